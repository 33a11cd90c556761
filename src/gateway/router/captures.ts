/**
 * Kong's `uri_captures` of a matched route, for `hash_on = "uri_capture"`: the groups of its first
 * regex path (`~...`) that matches, named groups by name and all groups by number. Compiled on
 * first use per route, so routes that never hash on a capture cost nothing.
 */
const compiled = new WeakMap<readonly string[], readonly RegExp[]>();

export function uriCapture(paths: readonly string[], path: string, name: string): string | undefined {
  let regexes = compiled.get(paths);
  if (!regexes) {
    // Anchored at the path's start, as the router matches them.
    regexes = paths.filter((p) => p.startsWith("~")).map((p) => new RegExp(`^(?:${p.slice(1)})`));
    compiled.set(paths, regexes);
  }
  for (const r of regexes) {
    const found = r.exec(path);
    if (!found) continue;
    return /^\d+$/.test(name) ? found[Number(name)] : found.groups?.[name];
  }
  return undefined;
}
