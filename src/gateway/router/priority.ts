/**
 * Kong's route priorities (the `traditional_compatible` router, Kong's default since 3.0, and the
 * documented "matching priorities"). A route with paths of several kinds is split, as Kong does,
 * into one matcher for all its regex paths and one per prefix length. Matchers are ordered by:
 *   1. how many attributes the route sets (methods, hosts, headers, paths, snis, sources, destinations);
 *   2. only plain (non-wildcard) hosts;
 *   3. how many headers it names;
 *   4. a regex path group before a prefix group;
 *   5. `regex_priority` (regex groups only);
 *   6. the prefix length;
 *   7. file order (Kong: `created_at`).
 */
import type { RouteRules } from "./conditions.ts";

export interface PathGroup {
  readonly regex: boolean;
  /** All prefixes of one length, or all regex sources (without `~`), in file order. */
  readonly paths: readonly string[];
}

/** Kong's `split_routes_and_services_by_path`: one group per prefix length, one for all regexes. */
export function pathGroups(paths: readonly string[]): PathGroup[] {
  if (paths.length === 1) {
    const p = paths[0]!;
    return [p.startsWith("~") ? { regex: true, paths: [p.slice(1)] } : { regex: false, paths }];
  }
  const groups = new Map<number, string[]>(); // key -1: regexes
  for (const p of paths) {
    const key = p.startsWith("~") ? -1 : p.length;
    const list = groups.get(key) ?? [];
    list.push(p.startsWith("~") ? p.slice(1) : p);
    groups.set(key, list);
  }
  return [...groups.entries()].map(([key, list]) => ({ regex: key === -1, paths: list }));
}

/** A matcher's place in Kong's order (1-6 above); greater wins, field by field. */
export interface Priority {
  /** 1-4 packed in one number: attribute count, plain hosts only, header count, regex group. */
  readonly head: number;
  /** 5: `regex_priority` (regex groups only). */
  readonly regexPriority: number;
  /** 6: the prefix length (prefix groups only). */
  readonly prefixLength: number;
}

/** Fields 1-4 of the priority of `rules` with a path group of that kind (or none). */
export function priorityHead(rules: RouteRules, group: "regex" | "prefix" | undefined): number {
  let headers = 0;
  for (const _ in rules.headers) headers++;
  const weight =
    (rules.methods.length ? 1 : 0) +
    (rules.hosts.length ? 1 : 0) +
    (headers ? 1 : 0) +
    (group ? 1 : 0) +
    (rules.snis?.length ? 1 : 0) +
    (rules.sources?.length ? 1 : 0) +
    (rules.destinations?.length ? 1 : 0);
  let plainHosts = rules.hosts.length > 0;
  for (const h of rules.hosts) if (h.includes("*")) plainHosts = false;
  return ((weight * 2 + (plainHosts ? 1 : 0)) * 256 + Math.min(headers, 255)) * 2 + (group === "regex" ? 1 : 0);
}

/** Negative when `a` goes first. */
export function comparePriority(a: Priority, b: Priority): number {
  return b.head - a.head || b.regexPriority - a.regexPriority || b.prefixLength - a.prefixLength;
}
