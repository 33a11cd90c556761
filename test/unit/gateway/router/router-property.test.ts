/**
 * The indexed router against a straightforward reading of Kong's priorities kept here: for
 * random route sets and random requests, both pick the same route and strip the same prefix.
 */
import { describe, expect, it } from "bun:test";
import { compileRoutes, facts, type RequestSpec, type RouteSpec } from "../../../support/routes.ts";
import { Router } from "../../../../src/gateway/router/router.ts";

/** Kong's rules, read literally: every route, every path, no index. */
function reference(routes: readonly RouteSpec[], path: string, r: RequestSpec): { name: string; stripped: string } | undefined {
  const lowerHost = (r.host ?? "gw.test").toLowerCase();
  const colon = lowerHost.lastIndexOf(":");
  const hostName = colon >= 0 ? lowerHost.slice(0, colon) : lowerHost;
  const hostPort = colon >= 0 ? Number(lowerHost.slice(colon + 1)) : (r.localPort ?? 8000);
  const hostOk = (pattern: string) => {
    const [name, port] = pattern.toLowerCase().split(":") as [string, string | undefined];
    if (port !== undefined && Number(port) !== hostPort) return false;
    if (name.startsWith("*")) return hostName.endsWith(name.slice(1)) && hostName.length > name.length - 1;
    if (name.endsWith("*")) return hostName.startsWith(name.slice(0, -1)) && hostName.length > name.length - 1;
    return name === hostName;
  };
  const headers = new Headers(r.headers ?? {});
  const headerOk = (name: string, values: string[]) => {
    const v = headers.get(name);
    if (v === null) return false;
    return [v, ...v.split(",").map((p) => p.trim())].some((x) =>
      values.some((want) => (want.startsWith("~*") ? new RegExp(want.slice(2), "i").test(x) : want.toLowerCase() === x.toLowerCase())),
    );
  };
  let best: { key: number[]; name: string; stripped: string } | undefined;
  routes.forEach((route, index) => {
    if (route.methods?.length && !route.methods.includes(r.method ?? "GET")) return;
    if (route.hosts?.length && !route.hosts.some(hostOk)) return;
    if (!Object.entries(route.headers ?? {}).every(([n, vs]) => headerOk(n, vs))) return;
    const base =
      [route.methods, route.hosts, route.snis, route.sources, route.destinations].filter((f) => f?.length).length +
      (Object.keys(route.headers ?? {}).length ? 1 : 0);
    const plainHosts = route.hosts?.length && route.hosts.every((h) => !h.includes("*")) ? 1 : 0;
    const headerCount = Object.keys(route.headers ?? {}).length;
    const candidates: { key: number[]; matched: number }[] = [];
    if (!route.paths?.length) candidates.push({ key: [base, plainHosts, headerCount, 0, 0, 0], matched: 0 });
    for (const p of route.paths ?? []) {
      if (p.startsWith("~")) {
        // The first of the route's regexes that matches gives the stripped part.
        const first = route
          .paths!.filter((q) => q.startsWith("~"))
          .map((q) => new RegExp(`^(?:${q.slice(1)})`).exec(path))
          .find((m) => m);
        if (first) candidates.push({ key: [base + 1, plainHosts, headerCount, 1, route.regex_priority ?? 0, 0], matched: first[0].length });
      } else if (path.startsWith(p)) candidates.push({ key: [base + 1, plainHosts, headerCount, 0, 0, p.length], matched: p.length });
    }
    for (const c of candidates) {
      const key = [...c.key, -index];
      if (!best || greater(key, best.key)) best = { key, name: route.name!, stripped: path.slice(c.matched) };
    }
  });
  return best && { name: best.name, stripped: best.stripped };
}

function greater(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! > b[i]!;
  return false;
}

/** A small seeded generator, so a failure can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const some = <T>(xs: readonly T[], p: number): T[] => (next() < p ? xs.filter(() => next() < 0.4).slice(0, 3) : []);
  return { next, int, pick, some };
}

const SEGMENTS = ["a", "b", "ab", "c", "1", "42"];
const REGEXES = ["/a/\\d+", "/(a|b)/c", "/ab?c", "/a/b$", "/\\d+", "/c/[a-c]+/1", "/a.c", "/b|/c", "/42\\/"];
const HOSTS = ["x.test", "y.test", "*.test", "x.*", "*.x.test", "x.test:8000", "y.test:9000", "X.Test"];
const REQUEST_HOSTS = ["x.test", "y.test", "z.x.test", "x.org", "X.TEST:8000", "y.test:9000", "other", "x.test:9000"];
const METHODS = ["GET", "POST", "PUT"];

describe("the indexed router", () => {
  it("picks the same route as the reference for random routes and requests", () => {
    let compared = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const g = rng(seed);
      const randomPath = () => `/${Array.from({ length: g.int(4) }, () => g.pick(SEGMENTS)).join("/")}`;
      const specs: RouteSpec[] = Array.from({ length: 1 + g.int(25) }, (_, i) => {
        const paths = g.next() < 0.8 ? Array.from({ length: 1 + g.int(3) }, () => (g.next() < 0.3 ? `~${g.pick(REGEXES)}` : randomPath())) : [];
        const spec: RouteSpec = {
          name: `r${i}`,
          paths,
          hosts: g.some(HOSTS, 0.4),
          methods: g.some(METHODS, 0.3),
          headers: g.next() < 0.2 ? Object.fromEntries(g.some(["h1", "h2"], 1).map((h) => [h, [g.pick(["v1", "v2", "~*^v[12]$", "~*3"])]])) : {},
          regex_priority: g.int(3) - 1,
        };
        if (!spec.paths!.length && !spec.hosts!.length && !spec.methods!.length && !Object.keys(spec.headers!).length) spec.paths = ["/"];
        return spec;
      });
      const router = new Router(compileRoutes(specs));
      for (let q = 0; q < 40; q++) {
        const path = g.next() < 0.2 ? `/${g.pick(SEGMENTS)}${g.pick(SEGMENTS)}` : randomPath();
        const request: RequestSpec = {
          method: g.pick(METHODS),
          host: g.pick(REQUEST_HOSTS),
          headers: Object.fromEntries(g.some(["h1", "h2"], 0.5).map((h) => [h, g.pick(["v1", "V2", "v3", "v1, v3"])])),
        };
        const got = router.match(facts(path, request));
        const want = reference(specs, path, request);
        const label = `seed ${seed}, ${request.method} ${request.host}${path} ${JSON.stringify(request.headers)}`;
        expect({ label, name: got?.route.config.name, stripped: got?.strippedPath }).toEqual({ label, name: want?.name, stripped: want?.stripped });
        compared++;
      }
    }
    expect(compared).toBe(12_000);
  }, 60_000);
});
