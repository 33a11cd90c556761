/**
 * A radix trie over path prefixes (Kong's prefixes are plain string prefixes: `/api` matches
 * `/apix`). Walking a request path visits every node whose key is a prefix of it, in
 * O(path length) whatever the number of routes, comparing in place (no substrings).
 */
export class TrieNode<T> {
  children: Map<number, TrieNode<T>> | undefined;
  value: T | undefined;
  constructor(public label: string) {}
}

export class PathTrie<T> {
  readonly root = new TrieNode<T>("");

  /** The node for `key`, created (splitting edges) when missing. */
  node(key: string): TrieNode<T> {
    let node = this.root;
    let pos = 0;
    while (pos < key.length) {
      const first = key.charCodeAt(pos);
      const children = (node.children ??= new Map());
      let child = children.get(first);
      if (!child) {
        child = new TrieNode<T>(key.slice(pos));
        children.set(first, child);
        return child;
      }
      const label = child.label;
      // Descending through a whole label is the common case: one native comparison.
      if (key.startsWith(label, pos)) {
        node = child;
        pos += label.length;
        continue;
      }
      const max = Math.min(label.length, key.length - pos);
      let n = 1; // the first character matched: that is how the child was found
      while (n < max && label.charCodeAt(n) === key.charCodeAt(pos + n)) n++;
      if (n < label.length) {
        const mid = new TrieNode<T>(child.label.slice(0, n));
        child.label = child.label.slice(n);
        mid.children = new Map([[child.label.charCodeAt(0), child]]);
        children.set(first, mid);
        child = mid;
      }
      node = child;
      pos += n;
    }
    return node;
  }

  /** Calls `fn` with every node that has a value. */
  forEach(fn: (node: TrieNode<T>) => void): void {
    const stack = [this.root];
    for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
      if (node.value !== undefined) fn(node);
      if (node.children) stack.push(...node.children.values());
    }
  }

  /** Calls `visit` with the value of every node whose key is a prefix of `path`, shortest first. */
  walk(path: string, visit: (value: T) => void): void {
    let node = this.root;
    if (node.value !== undefined) visit(node.value);
    let pos = 0;
    while (node.children !== undefined && pos < path.length) {
      const child = node.children.get(path.charCodeAt(pos));
      if (child === undefined || !path.startsWith(child.label, pos)) return;
      pos += child.label.length;
      node = child;
      if (node.value !== undefined) visit(node.value);
    }
  }
}
