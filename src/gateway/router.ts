/**
 * Kong's route matching (the "traditional" router): a route matches when every attribute it
 * sets matches. Among matches, regex paths come first (by `regex_priority`), then the longest
 * path prefix, then the more specific host, then routes that name methods, then file order.
 */
import type { RouteConfig, ServiceConfig } from "../config/schema.ts";

export interface RouteMatch {
  readonly route: CompiledRoute;
  /** Request path with the matched prefix removed when `strip_path` is on. */
  readonly strippedPath: string;
}

export interface CompiledRoute {
  readonly config: RouteConfig;
  readonly service: ServiceConfig;
  readonly index: number;
}

interface PathMatcher {
  readonly regex: boolean;
  readonly prefix: string;
  readonly pattern?: RegExp;
}

interface HostMatcher {
  readonly exact?: string;
  readonly suffix?: string; // "*.example.com" -> ".example.com"
  readonly prefix?: string; // "example.*" -> "example."
  readonly port?: string;
}

interface Entry {
  readonly route: CompiledRoute;
  readonly paths: readonly PathMatcher[];
  readonly hosts: readonly HostMatcher[];
  readonly methods: ReadonlySet<string> | undefined;
  readonly protocols: ReadonlySet<string>;
}

export interface RequestFacts {
  readonly method: string;
  /** The Host header as sent (may carry a port). */
  readonly host: string;
  readonly path: string;
  readonly protocol: "http" | "https";
}

function hostMatcher(pattern: string): HostMatcher {
  const lower = pattern.toLowerCase();
  const colon = lower.lastIndexOf(":");
  const [name, port] = colon > 0 ? [lower.slice(0, colon), lower.slice(colon + 1)] : [lower, undefined];
  const base = port ? { port } : {};
  if (name.startsWith("*.")) return { ...base, suffix: name.slice(1) };
  if (name.endsWith(".*")) return { ...base, prefix: name.slice(0, -1) };
  return { ...base, exact: name };
}

/** 2 exact, 1 wildcard, 0 no match. */
function hostScore(m: HostMatcher, name: string, port: string | undefined): number {
  if (m.port !== undefined && m.port !== port) return 0;
  if (m.exact !== undefined) return m.exact === name ? 2 : 0;
  if (m.suffix !== undefined) return name.endsWith(m.suffix) && name.length > m.suffix.length ? 1 : 0;
  if (m.prefix !== undefined) return name.startsWith(m.prefix) && name.length > m.prefix.length ? 1 : 0;
  return 0;
}

function splitHost(host: string): [string, string | undefined] {
  const lower = host.toLowerCase();
  if (lower.startsWith("[")) {
    const end = lower.indexOf("]");
    const port = lower.slice(end + 2);
    return [lower.slice(0, end + 1), port || undefined];
  }
  const colon = lower.lastIndexOf(":");
  return colon >= 0 ? [lower.slice(0, colon), lower.slice(colon + 1)] : [lower, undefined];
}

export class Router {
  readonly #entries: Entry[];

  constructor(routes: readonly CompiledRoute[]) {
    this.#entries = routes.map((route) => ({
      route,
      paths: route.config.paths.map((p) =>
        p.startsWith("~") ? { regex: true, prefix: "", pattern: new RegExp(`^(?:${p.slice(1)})`) } : { regex: false, prefix: p },
      ),
      hosts: route.config.hosts.map(hostMatcher),
      methods: route.config.methods.length ? new Set(route.config.methods) : undefined,
      protocols: new Set(route.config.protocols),
    }));
  }

  match(req: RequestFacts): RouteMatch | undefined {
    let best: RouteMatch | undefined;
    let bestKey: number[] | undefined;
    const [hostName, hostPort] = splitHost(req.host);
    for (const e of this.#entries) {
      if (!e.protocols.has(req.protocol)) continue;
      if (e.methods && !e.methods.has(req.method)) continue;
      let hostRank = 0;
      if (e.hosts.length) {
        for (const h of e.hosts) hostRank = Math.max(hostRank, hostScore(h, hostName, hostPort));
        if (!hostRank) continue;
      }
      let pathKind = 0; // 0: no paths configured, 1: prefix, 2: regex
      let pathLength = 0;
      let matched = "";
      if (e.paths.length) {
        for (const p of e.paths) {
          if (p.regex) {
            const m = p.pattern!.exec(req.path);
            if (m && (pathKind < 2 || m[0].length > pathLength)) [pathKind, pathLength, matched] = [2, m[0].length, m[0]];
          } else if (pathKind < 2 && req.path.startsWith(p.prefix) && p.prefix.length >= pathLength) {
            [pathKind, pathLength, matched] = [1, p.prefix.length, p.prefix];
          }
        }
        if (!pathKind) continue;
      }
      const key = [pathKind === 2 ? 1 : 0, pathKind === 2 ? e.route.config.regex_priority : 0, pathLength, hostRank, e.methods ? 1 : 0, -e.route.index];
      if (!bestKey || greater(key, bestKey)) {
        bestKey = key;
        best = { route: e.route, strippedPath: e.route.config.strip_path && matched ? req.path.slice(matched.length) : req.path };
      }
    }
    return best;
  }
}

function greater(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! > b[i]!;
  return false;
}

/** Kong's `path_handling`: how the service path and the (stripped) request path are joined. */
export function upstreamPath(servicePath: string, stripped: string, handling: "v0" | "v1"): string {
  const base = servicePath || "/";
  if (stripped === "") return base;
  const baseSlash = base.endsWith("/");
  const restSlash = stripped.startsWith("/");
  if (baseSlash && restSlash) return base + stripped.slice(1);
  if (baseSlash || restSlash) return base + stripped;
  return handling === "v0" ? `${base}/${stripped}` : base + stripped;
}
