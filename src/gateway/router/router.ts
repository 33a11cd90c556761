/**
 * Kong's route matching at a cost that does not grow with the number of routes. Each route is
 * split into matchers (priority.ts) ranked once, globally, by Kong's priorities. Matchers are filed
 * in a path trie under their prefix (regexes under their literal prefix, routes without paths at
 * the root) and, in each trie node, by host (exact names in a map, wildcards by suffix/prefix).
 * A request walks the trie along its path; in each list it visits, the first matcher whose other
 * conditions hold is the list's best, and lists stop as soon as they cannot beat the best so far.
 */
import type { RouteConfig, ServiceConfig } from "../../config/schema.ts";
import { Conditions, splitHost, type RouteRules } from "./conditions.ts";
import type { RequestFacts } from "./facts.ts";
import { comparePriority, pathGroups, priorityHead, type Priority } from "./priority.ts";
import { regexLiteralPrefix } from "./regex-prefix.ts";
import { PathTrie } from "./trie.ts";

export type { RequestFacts } from "./facts.ts";
export { upstreamPath } from "./upstream-path.ts";

export interface CompiledRoute {
  readonly config: RouteConfig;
  readonly service: ServiceConfig;
  readonly index: number;
}

export interface RouteMatch {
  readonly route: CompiledRoute;
  /** Request path with the matched prefix (or regex match) removed when `strip_path` is on. */
  readonly strippedPath: string;
}

/** One route's regex paths, or its prefixes of one length, or the route without paths (Kong's split). */
class Matcher {
  /** Position in Kong's priority order: lower wins (set once all are sorted). */
  rank = 0;
  constructor(
    readonly route: CompiledRoute,
    readonly conditions: Conditions,
    /** Regex paths (anchored at the path start), or undefined for a prefix group / no paths. */
    readonly regexes: readonly RegExp[] | undefined,
    /** Length of the group's prefixes (0 without paths). */
    readonly prefixLength: number,
  ) {}
}

/**
 * A matcher while the router is built: what it is ranked by and where it is filed. Not kept:
 * at 11 000 routes these fields on every matcher were ~0.5 MB of live heap.
 */
class Pending implements Priority {
  readonly prefixLength: number;
  constructor(
    readonly matcher: Matcher,
    /** Where it is filed in the trie: the prefixes, or the regexes' common literal prefix. */
    readonly keys: string | readonly string[],
    readonly head: number,
    readonly regexPriority: number,
    /** Order of the group within its route. */
    readonly order: number,
  ) {
    this.prefixLength = matcher.prefixLength;
  }
}

/** The matchers filed under one trie node, by host. Each list is in rank order; maps are made when needed. */
class Bucket {
  exact: Map<string, Matcher[]> | undefined;
  /** `*.example.com` under `.example.com`. */
  suffix: Map<string, Matcher[]> | undefined;
  /** `example.*` under `example.`. */
  prefix: Map<string, Matcher[]> | undefined;
  any: Matcher[] | undefined;
  /**
   * The regex paths of `any`, up to 32 regex matchers at a time in one RegExp (regexes without a
   * literal prefix all sit at the trie's root or under `/`, visited by every request): the
   * first chunk that matches says where the list's first matching regex can be, and the
   * regexes before it are passed over without a test each.
   */
  anyFilter: readonly RegexChunk[] | undefined;
}

interface RegexChunk {
  /** `^(?:a)|^(?:b)|…`: matches where one of its matchers' regexes does. */
  readonly regex: RegExp;
  /** Place in the list of its first matcher. */
  readonly start: number;
}

const push = (map: Map<string, Matcher[]>, key: string, m: Matcher) => {
  const list = map.get(key);
  if (list) {
    if (list[list.length - 1] !== m) list.push(m);
  } else map.set(key, [m]);
};

export class Router {
  /** A node's matchers: a Bucket, or just its host-less list when that is all it holds (most nodes). */
  readonly #trie = new PathTrie<Bucket | Matcher[]>();
  readonly #wildcards: boolean;
  // Scratch state of the current match (match is synchronous), so a request allocates nothing here.
  #best: Matcher | undefined;
  #bestRank = Infinity;
  #path = "";
  #facts: RequestFacts | undefined;
  #hostName = "";
  #hostPort: number | undefined;
  #hostSuffixes: string[] = [];
  #hostPrefixes: string[] = [];
  readonly #visit = (value: Bucket | Matcher[]) => (value instanceof Bucket ? this.#visitBucket(value) : this.#scanAny(value));

  constructor(routes: readonly CompiledRoute[]) {
    // One object per matcher, no per-route arrays: this runs for every route at start and reload.
    const matchers: Pending[] = [];
    const methodSets = new Map<string, ReadonlySet<string>>();
    for (const route of routes) {
      const rules: RouteRules = route.config;
      const conditions = Conditions.of(rules, methodSets);
      const paths = rules.paths;
      if (paths.length === 0) {
        matchers.push(new Pending(new Matcher(route, conditions, undefined, 0), "", priorityHead(rules, undefined), 0, 0));
      } else if (paths.length === 1) {
        const p = paths[0]!;
        if (p.startsWith("~")) {
          const source = p.slice(1);
          const head = priorityHead(rules, "regex");
          matchers.push(
            new Pending(new Matcher(route, conditions, [anchored(source)], 0), regexLiteralPrefix(source), head, rules.regex_priority, 0),
          );
        } else matchers.push(new Pending(new Matcher(route, conditions, undefined, p.length), p, priorityHead(rules, "prefix"), 0, 0));
      } else {
        pathGroups(paths).forEach((group, order) => {
          if (group.regex) {
            const key = commonPrefix(group.paths.map(regexLiteralPrefix));
            const head = priorityHead(rules, "regex");
            matchers.push(new Pending(new Matcher(route, conditions, group.paths.map(anchored), 0), key, head, rules.regex_priority, order));
          } else {
            const head = priorityHead(rules, "prefix");
            matchers.push(new Pending(new Matcher(route, conditions, undefined, group.paths[0]!.length), group.paths, head, 0, order));
          }
        });
      }
    }
    matchers.sort((a, b) => comparePriority(a, b) || a.matcher.route.index - b.matcher.route.index || a.order - b.order);
    let wildcards = false;
    const regexBuckets = new Set<Bucket>();
    for (let rank = 0; rank < matchers.length; rank++) {
      const { matcher, keys } = matchers[rank]!;
      matcher.rank = rank;
      if (typeof keys === "string") wildcards = this.#file(keys, matcher, regexBuckets) || wildcards;
      else for (const key of keys) wildcards = this.#file(key, matcher, regexBuckets) || wildcards;
    }
    this.#wildcards = wildcards;
    for (const bucket of regexBuckets) bucket.anyFilter = combined(bucket.any!);
    // A Bucket per node kept ~0.7 MB alive at 11 000 routes, most holding one list.
    this.#trie.forEach((node) => {
      const b = node.value as Bucket;
      if (!b.exact && !b.suffix && !b.prefix && !b.anyFilter) node.value = b.any;
    });
  }

  /** Files `matcher` under `key` by host; true when it has wildcard hosts. */
  #file(key: string, matcher: Matcher, regexBuckets: Set<Bucket>): boolean {
    const node = this.#trie.node(key);
    const bucket = (node.value ??= new Bucket()) as Bucket;
    const hosts = matcher.conditions.hosts;
    if (!hosts.length) {
      (bucket.any ??= []).push(matcher);
      if (matcher.regexes !== undefined) regexBuckets.add(bucket);
      return false;
    }
    let wildcards = false;
    for (const h of hosts) {
      if (h.kind === "exact") push((bucket.exact ??= new Map()), h.name, matcher);
      else {
        wildcards = true;
        push(h.kind === "suffix" ? (bucket.suffix ??= new Map()) : (bucket.prefix ??= new Map()), h.name, matcher);
      }
    }
    return wildcards;
  }

  match(req: RequestFacts): RouteMatch | undefined {
    this.#best = undefined;
    this.#bestRank = Infinity;
    this.#path = req.path;
    this.#facts = req;
    this.#splitHost(req.host, req.localPort);
    if (this.#wildcards) this.#hostParts();
    this.#trie.walk(req.path, this.#visit);
    const best = this.#best as Matcher | undefined;
    this.#facts = undefined;
    if (!best) return undefined;
    return { route: best.route, strippedPath: best.route.config.strip_path ? req.path.slice(matchedLength(best, req.path)) : req.path };
  }

  /** Host header → lower-case name and port (the listener's port when the header has none), without a tuple. */
  #splitHost(host: string, localPort: number | undefined): void {
    const lower = host.toLowerCase();
    const colon = lower.lastIndexOf(":");
    if (colon < 0 || lower.endsWith("]")) {
      this.#hostName = lower;
      this.#hostPort = localPort;
    } else if (lower.startsWith("[")) {
      [this.#hostName, this.#hostPort] = splitHost(lower, localPort);
    } else {
      this.#hostName = lower.slice(0, colon);
      this.#hostPort = Number(lower.slice(colon + 1));
    }
  }

  /** `a.b.example.com` → suffixes `.b.example.com`, `.example.com`, `.com`; prefixes `a.`, `a.b.`, `a.b.example.`. */
  #hostParts(): void {
    const name = this.#hostName;
    this.#hostSuffixes.length = 0;
    this.#hostPrefixes.length = 0;
    for (let i = name.indexOf("."); i > 0; i = name.indexOf(".", i + 1)) {
      this.#hostSuffixes.push(name.slice(i));
      if (i < name.length - 1) this.#hostPrefixes.push(name.slice(0, i + 1));
    }
  }

  #visitBucket(bucket: Bucket): void {
    if (bucket.exact !== undefined) {
      const list = bucket.exact.get(this.#hostName);
      if (list !== undefined) this.#scan(list);
    }
    if (bucket.suffix !== undefined) for (const s of this.#hostSuffixes) this.#scanKey(bucket.suffix, s);
    if (bucket.prefix !== undefined) for (const p of this.#hostPrefixes) this.#scanKey(bucket.prefix, p);
    const any = bucket.any;
    if (any === undefined || any[0]!.rank >= this.#bestRank) return;
    const chunks = bucket.anyFilter;
    let first = 0;
    if (chunks !== undefined) {
      first = any.length; // no regex of the list matches
      for (const chunk of chunks) {
        if (chunk.regex.test(this.#path)) {
          first = chunk.start;
          break;
        }
      }
    }
    this.#scan(any, first);
  }

  #scanAny(any: readonly Matcher[]): void {
    if (any[0]!.rank < this.#bestRank) this.#scan(any);
  }

  #scanKey(map: Map<string, Matcher[]>, key: string): void {
    const list = map.get(key);
    if (list) this.#scan(list);
  }

  /** `firstRegex`: the list's filter says no regex matcher before this place matches. */
  #scan(list: readonly Matcher[], firstRegex = 0): void {
    for (let i = 0; i < list.length; i++) {
      const m = list[i]!;
      if (m.rank >= this.#bestRank) return;
      if (m.regexes !== undefined && (i < firstRegex || !anyRegex(m.regexes, this.#path))) continue;
      if (!m.conditions.test(this.#facts!, this.#hostName, this.#hostPort)) continue;
      this.#best = m;
      this.#bestRank = m.rank;
      return;
    }
  }
}

/**
 * The chunks of a list with two or more regex matchers; none when a regex refers to its own
 * groups, whose numbers an alternation shifts, or when the engine refuses one (repeated names).
 */
function combined(list: readonly Matcher[]): RegexChunk[] | undefined {
  let regexes = 0;
  for (const m of list) if (m.regexes !== undefined && ++regexes === 2) break;
  if (regexes < 2) return undefined; // most buckets: one route's regex under its own prefix
  const chunks: RegexChunk[] = [];
  let sources: string[] = [];
  let start = 0;
  let inChunk = 0;
  let total = 0;
  const close = () => {
    if (inChunk) chunks.push({ regex: new RegExp(sources.join("|")), start });
    sources = [];
    inChunk = 0;
  };
  try {
    list.forEach((m, position) => {
      if (m.regexes === undefined) return;
      if (m.regexes.some((r) => /\\[1-9]|\\k</.test(r.source))) throw new Error("a backreference");
      if (inChunk === 0) start = position;
      for (const r of m.regexes) sources.push(r.source);
      total++;
      if (++inChunk === 32) close();
    });
    close();
  } catch {
    return undefined;
  }
  return total >= 2 ? chunks : undefined;
}

function anyRegex(regexes: readonly RegExp[], path: string): boolean {
  for (const r of regexes) if (r.test(path)) return true;
  return false;
}

/** How much of the path the winner matched: its prefix, or its first matching regex's match. */
function matchedLength(m: Matcher, path: string): number {
  if (!m.regexes) return m.prefixLength;
  for (const r of m.regexes) {
    const found = r.exec(path);
    if (found) return found[0].length;
  }
  return 0;
}

const anchored = (source: string) => new RegExp(`^(?:${source})`);

function commonPrefix(list: readonly string[]): string {
  let prefix = list[0] ?? "";
  for (const s of list) while (!s.startsWith(prefix)) prefix = prefix.slice(0, -1);
  return prefix;
}
