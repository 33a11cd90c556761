import { describe, expect, it } from "bun:test";
import { upstreamSchema } from "../../../../src/config/upstreams.ts";
import { NoHealthyPeerError } from "../../../../src/errors.ts";
import { Balancer } from "../../../../src/upstream/balancer/balancer.ts";
import { HealthChecker, type Outcome } from "../../../../src/upstream/balancer/health.ts";
import { UpstreamPool } from "../../../../src/upstream/balancer/upstream-pool.ts";

const CTX = { resolvePath: (p: string) => p };

const two = (wa = 100, wb = 100) => [
  { host: "10.0.0.1", port: 80, weight: wa },
  { host: "10.0.0.2", port: 80, weight: wb },
];

function shares(pick: () => string | undefined, n: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const name = pick() ?? "none";
    out[name] = (out[name] ?? 0) + 1;
  }
  return out;
}

const upstream = (extra: Record<string, unknown> = {}) =>
  upstreamSchema(CTX).parse({ name: "backend", targets: [{ target: "10.0.0.1:80" }, { target: "10.0.0.2:80" }], ...extra });

describe("the balancer", () => {
  it("splits round-robin traffic by weight, exactly", () => {
    const b = new Balancer(two(100, 300), { algorithm: "round-robin" });
    expect(shares(() => b.pick()?.name, 400)).toEqual({ "10.0.0.1:80": 100, "10.0.0.2:80": 300 });
  });

  it("gives a weight-0 target no traffic", () => {
    const b = new Balancer(two(100, 0), { algorithm: "round-robin" });
    expect(shares(() => b.pick()?.name, 10)).toEqual({ "10.0.0.1:80": 10 });
  });

  it("skips unhealthy targets and has no peer when all are unhealthy", () => {
    const b = new Balancer(two(), { algorithm: "round-robin" });
    b.targets[0]!.healthy = false;
    expect(shares(() => b.pick()?.name, 4)).toEqual({ "10.0.0.2:80": 4 });
    b.targets[1]!.healthy = false;
    expect(b.pick()).toBeUndefined();
  });

  it("sends a retry to a target not yet tried", () => {
    const b = new Balancer(two(), { algorithm: "round-robin" });
    for (let i = 0; i < 6; i++) {
      const first = b.pick()!;
      expect(b.pick(undefined, new Set([first]))).not.toBe(first);
    }
  });

  it("keeps one hash value on one target and spreads many values over both", () => {
    const b = new Balancer(two(), { algorithm: "consistent-hashing", slots: 1000 });
    const first = b.pick("caller-42")!;
    for (let i = 0; i < 20; i++) expect(b.pick("caller-42")).toBe(first);
    const spread = shares(() => b.pick(`caller-${Math.random()}`)?.name, 2000);
    expect(spread["10.0.0.1:80"]!).toBeGreaterThan(700);
    expect(spread["10.0.0.2:80"]!).toBeGreaterThan(700);
  });

  it("moves a hashed caller only when its target becomes unusable", () => {
    const b = new Balancer(two(), { algorithm: "consistent-hashing" });
    const first = b.pick("x")!;
    first.healthy = false;
    const other = b.pick("x")!;
    expect(other).not.toBe(first);
    first.healthy = true;
    expect(b.pick("x")).toBe(first);
  });

  it("prefers the target with fewer requests in flight (least-connections)", () => {
    const b = new Balancer(two(), { algorithm: "least-connections" });
    b.targets[0]!.active = 3;
    expect(b.pick()!.name).toBe("10.0.0.2:80");
  });

  it("prefers the faster target once both answered (latency)", () => {
    const b = new Balancer(two(), { algorithm: "latency" });
    b.observe(b.targets[0]!, 50);
    b.observe(b.targets[1]!, 5);
    expect(shares(() => b.pick()?.name, 5)).toEqual({ "10.0.0.2:80": 5 });
  });
});

describe("health checks", () => {
  const checker = (healthchecks: Record<string, unknown>) => {
    const u = upstream({ healthchecks });
    const b = new Balancer(two(), { algorithm: "round-robin" });
    return { b, h: new HealthChecker(b.targets, u.healthchecks) };
  };
  const http = (status: number): Outcome => ({ kind: "http", status });

  it("are off by default: every target HEALTHCHECKS_OFF and never marked", () => {
    const { b, h } = checker({});
    for (let i = 0; i < 10; i++) h.passive(b.targets[0]!, { kind: "tcp_failure" });
    expect(h.enabled).toBe(false);
    expect(h.state(b.targets[0]!)).toBe("HEALTHCHECKS_OFF");
    expect(b.targets[0]!.healthy).toBe(true);
  });

  it("mark a target unhealthy after http_failures consecutive failing statuses (passive)", () => {
    const { b, h } = checker({ passive: { unhealthy: { http_failures: 3 } } });
    const t = b.targets[0]!;
    h.passive(t, http(500));
    h.passive(t, http(500));
    h.passive(t, http(200)); // a success resets the count
    h.passive(t, http(500));
    h.passive(t, http(503));
    expect(h.state(t)).toBe("HEALTHY");
    h.passive(t, http(500));
    expect(h.state(t)).toBe("UNHEALTHY");
  });

  it("count connection failures and timeouts against their own thresholds", () => {
    const { b, h } = checker({ passive: { unhealthy: { tcp_failures: 2, timeouts: 1 } } });
    h.passive(b.targets[0]!, { kind: "tcp_failure" });
    expect(b.targets[0]!.healthy).toBe(true);
    h.passive(b.targets[0]!, { kind: "tcp_failure" });
    expect(b.targets[0]!.healthy).toBe(false);
    h.passive(b.targets[1]!, { kind: "timeout" });
    expect(b.targets[1]!.healthy).toBe(false);
  });

  it("mark a target healthy again after healthy.successes probes", async () => {
    const answers: Outcome[] = [http(500), http(500), http(200), http(200), http(200)];
    const u = upstream({ healthchecks: { active: { healthy: { interval: 0.01, successes: 3 }, unhealthy: { interval: 0.01, http_failures: 2 } } } });
    const pool = new UpstreamPool({ ...u, targets: [u.targets[0]!] }, async () => answers.shift() ?? http(200));
    const t = pool.balancer.targets[0]!;
    pool.health.start();
    const seen: boolean[] = [];
    for (let i = 0; i < 100 && seen.length < 3; i++) {
      await Bun.sleep(5);
      if (seen.at(-1) !== t.healthy) seen.push(t.healthy);
    }
    pool.health.stop();
    expect(seen).toEqual([true, false, true]);
  });
});

describe("an upstream pool", () => {
  const source = (headers: Record<string, string> = {}) => ({ ip: "192.0.2.1", headers: new Headers(headers), path: "/a", query: "user=7" });

  it("answers Kong's 503 when no target is usable", () => {
    const pool = new UpstreamPool(upstreamSchema(CTX).parse({ name: "b", targets: [{ target: "10.0.0.1:80", weight: 0 }] }));
    expect(() => pool.peers(source()).pick()).toThrow(NoHealthyPeerError);
  });

  it("hashes on a header, falling back to the client address", () => {
    const pool = new UpstreamPool(upstream({ algorithm: "consistent-hashing", hash_on: "header", hash_on_header: "x-user", hash_fallback: "ip" }));
    expect(pool.hashValue(source({ "x-user": "alice" }))).toBe("alice");
    expect(pool.hashValue(source())).toBe("192.0.2.1");
  });

  it("hashes on a cookie or a query argument", () => {
    const cookie = new UpstreamPool(upstream({ algorithm: "consistent-hashing", hash_on: "cookie", hash_on_cookie: "sid" }));
    expect(cookie.hashValue(source({ cookie: "a=1; sid=xyz" }))).toBe("xyz");
    const arg = new UpstreamPool(upstream({ algorithm: "consistent-hashing", hash_on: "query_arg", hash_on_query_arg: "user" }));
    expect(arg.hashValue(source())).toBe("7");
  });

  it("counts proxied outcomes of the picked target (passive)", () => {
    const pool = new UpstreamPool(upstream({ healthchecks: { passive: { unhealthy: { tcp_failures: 1 } } } }));
    const peers = pool.peers(source());
    const first = peers.pick();
    peers.done({ kind: "tcp_failure" }, 1);
    expect(first.healthy).toBe(false);
    expect(first.active).toBe(0);
    expect(peers.pick()).not.toBe(first);
  });
});

describe("[[upstreams]] validation", () => {
  const issues = (input: Record<string, unknown>) => {
    const r = upstreamSchema(CTX).safeParse({ name: "b", ...input });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };
  it("refuses a target that is not host:port, a duplicate target and a weight out of range", () => {
    expect(issues({ targets: [{ target: "10.0.0.1" }] })[0]).toContain('targets.0.target: expected "host:port"');
    expect(issues({ targets: [{ target: "a:1" }, { target: "A:1" }] })[0]).toContain("targets.1.target: expected each target once");
    expect(issues({ targets: [{ target: "a:1", weight: 70000 }] })[0]).toContain("targets.0.weight: expected a weight 0-65535");
  });
  it("refuses a health check path that is not absolute", () => {
    expect(issues({ healthchecks: { active: { http_path: "status" } } })[0]).toContain("healthchecks.active.http_path: expected an absolute path");
  });
  it("needs the header to hash on", () => {
    expect(issues({ algorithm: "consistent-hashing", hash_on: "header" })[0]).toContain("hash_on_header: expected 'hash_on_header'");
  });
});

describe("Kong's cookie and uri_capture hashing", () => {
  const source = (headers: Record<string, string> = {}, captures: Record<string, string> = {}) => ({
    ip: "192.0.2.1",
    headers: new Headers(headers),
    path: "/a",
    query: "",
    capture: (name: string) => captures[name],
  });

  it("makes up the cookie a request lacks and says what to set, with hash_on_cookie_path", () => {
    const pool = new UpstreamPool(
      upstream({ algorithm: "consistent-hashing", hash_on: "cookie", hash_on_cookie: "lb", hash_on_cookie_path: "/app" }),
    );
    const picker = pool.peers(source());
    expect(picker.setCookie).toMatch(/^lb=[0-9a-f-]{36}; Path=\/app$/);
    const value = picker.setCookie!.slice(3, picker.setCookie!.indexOf(";"));
    const first = picker.pick();
    const again = pool.peers(source({ cookie: `lb=${value}` }));
    expect(again.setCookie).toBeUndefined();
    expect(again.pick()).toBe(first);
  });

  it("hashes on a named capture of the route's regex, falling back when it did not capture", () => {
    const pool = new UpstreamPool(
      upstream({ algorithm: "consistent-hashing", hash_on: "uri_capture", hash_on_uri_capture: "user", hash_fallback: "ip" }),
    );
    expect(pool.hashValue(source({}, { user: "alice" }))).toBe("alice");
    expect(pool.hashValue(source())).toBe("192.0.2.1");
  });

  it("refuses hash_on = cookie with a fallback, and uri_capture without the capture's name", () => {
    const r = (input: Record<string, unknown>) => upstreamSchema(CTX).safeParse({ name: "b", algorithm: "consistent-hashing", ...input });
    expect(r({ hash_on: "cookie", hash_on_cookie: "lb", hash_fallback: "ip" }).error?.issues[0]?.message).toContain('expected "none"');
    expect(r({ hash_on: "uri_capture" }).error?.issues[0]?.path).toEqual(["hash_on_uri_capture"]);
  });
});

describe("marking a target by hand (the admin API)", () => {
  it("takes an unhealthy target out of the balancer and shows it UNHEALTHY even with health checks off", () => {
    const pool = new UpstreamPool(upstream());
    const [a, b] = pool.balancer.targets;
    pool.health.mark(a!, false);
    expect(pool.health.state(a!)).toBe("UNHEALTHY");
    expect(pool.health.state(b!)).toBe("HEALTHCHECKS_OFF");
    expect(shares(() => pool.balancer.pick()?.name, 4)).toEqual({ "10.0.0.2:80": 4 });
    pool.health.mark(a!, true);
    expect(pool.health.state(a!)).toBe("HEALTHCHECKS_OFF");
  });

  it("resets the counters, so passive failures count from zero again", () => {
    const pool = new UpstreamPool(upstream({ healthchecks: { passive: { unhealthy: { tcp_failures: 2 } } } }));
    const a = pool.balancer.targets[0]!;
    pool.health.passive(a, { kind: "tcp_failure" });
    pool.health.mark(a, true);
    pool.health.passive(a, { kind: "tcp_failure" });
    expect(a.healthy).toBe(true);
    pool.health.passive(a, { kind: "tcp_failure" });
    expect(a.healthy).toBe(false);
  });
});
