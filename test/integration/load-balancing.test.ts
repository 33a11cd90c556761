/**
 * [[upstreams]] end to end: two echo upstream processes behind one upstream, the real gateway
 * (binary, or GATEWAY_RUNTIME=bun|deno), health checks watching targets that are killed and
 * restarted.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { startGateway, type GatewayProcess, serverTable } from "../support/gateway-process.ts";
import { startUpstreamProcess, type UpstreamProcess } from "../support/upstream-process.ts";
import { serviceToml, upstreamToml } from "../support/upstreams.ts";
import { waitUntil } from "../support/wait.ts";

const header = serverTable("access_log = false");

const service = (name: string, host: string, retries = 5) =>
  serviceToml(name, `url = "http://${host}"\nconnect_timeout = 1000\nread_timeout = 2000\nretries = ${retries}`);

async function whoami(gw: GatewayProcess, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const res = await fetch(`${gw.proxyUrl}${path}`, { headers });
  return { status: res.status, body: await res.text() };
}

/** Whether each of 16 callers stays on one target over `tries` requests (`whoamiOf` answers a caller's i-th), and the callers cover both targets. */
async function expectOneTargetPerCaller(tries: number, whoamiOf: (caller: number, i: number) => Promise<string>): Promise<void> {
  const seen = new Set<string>();
  for (let caller = 0; caller < 16; caller++) {
    const bodies = new Set<string>();
    for (let i = 0; i < tries; i++) bodies.add(await whoamiOf(caller, i));
    expect(bodies.size).toBe(1);
    seen.add([...bodies][0]!);
  }
  expect(seen.size).toBe(2);
}

async function tally(gw: GatewayProcess, path: string, n: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const { status, body } = await whoami(gw, path);
    const key = status === 200 ? body : `status ${status}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

/**
 * A describe's setup: two upstream processes, then the gateway on `header` and the tables `toml`
 * builds for them, handed to `started` before its cases; all stopped after them.
 */
function twoTargetsAndGateway(
  toml: (a: UpstreamProcess, b: UpstreamProcess) => string[],
  started: (a: UpstreamProcess, b: UpstreamProcess, gw: GatewayProcess) => void,
): void {
  let a: UpstreamProcess | undefined;
  let b: UpstreamProcess | undefined;
  let gw: GatewayProcess | undefined;
  beforeAll(async () => {
    [a, b] = await Promise.all([startUpstreamProcess(), startUpstreamProcess()]);
    gw = await startGateway({ config: [header, ...toml(a, b)].join("\n") });
    started(a, b, gw);
  });
  afterAll(async () => {
    await gw?.stop();
    await Promise.all([a?.kill(), b?.kill()]);
  });
}

describe("a service balanced over an upstream's targets", () => {
  let a: UpstreamProcess;
  let b: UpstreamProcess;
  let gw: GatewayProcess;
  twoTargetsAndGateway(
    (a, b) => [
      upstreamToml("backend", [a.target, b.target]),
      upstreamToml("half-off", [
        { target: a.target, weight: 100 },
        { target: b.target, weight: 0 },
      ]),
      upstreamToml("sticky", [a.target, b.target], 'algorithm = "consistent-hashing"\nhash_on = "header"\nhash_on_header = "x-user"'),
      upstreamToml(
        "cookie-sticky",
        [a.target, b.target],
        'algorithm = "consistent-hashing"\nhash_on = "cookie"\nhash_on_cookie = "lb"\nhash_on_cookie_path = "/cookie"',
      ),
      upstreamToml(
        "capture-sticky",
        [a.target, b.target],
        'algorithm = "consistent-hashing"\nhash_on = "uri_capture"\nhash_on_uri_capture = "user"\nhash_fallback = "header"\nhash_fallback_header = "x-user"',
      ),
      service("rr", "backend"),
      service("off", "half-off"),
      service("hash", "sticky"),
      service("cookie", "cookie-sticky"),
      `[[services]]
name = "capture"
url = "http://capture-sticky"

[[routes]]
name = "capture"
service = "capture"
paths = ["~/users/(?<user>[a-z0-9-]+)"]`,
    ],
    (...started) => ([a, b, gw] = started),
  );

  it("splits round-robin traffic 50/50 within 5%", async () => {
    const counts = await tally(gw, "/rr/whoami", 400);
    expect(Object.keys(counts).sort()).toEqual([String(a.port), String(b.port)].sort());
    expect(Math.abs(counts[String(a.port)]! - 200)).toBeLessThanOrEqual(20);
  });

  it("sends nothing to a target of weight 0", async () => {
    expect(await tally(gw, "/off/whoami", 40)).toEqual({ [String(a.port)]: 40 });
  });

  it("keeps a caller on one target when hashing on a header, and spreads callers over both", async () => {
    await expectOneTargetPerCaller(5, async (user) => (await whoami(gw, "/hash/whoami", { "x-user": `user-${user}` })).body);
  });

  it("hashing on a cookie: without one the gateway picks a target and sets the cookie (Kong's Set-Cookie); with it a caller stays on one target", async () => {
    const seen = new Set<string>();
    for (let caller = 0; caller < 16; caller++) {
      const first = await fetch(`${gw.proxyUrl}/cookie/whoami`);
      const setCookie = first.headers.get("set-cookie") ?? "";
      expect(setCookie).toMatch(/^lb=[0-9a-f-]{36}; Path=\/cookie$/);
      const target = await first.text();
      const cookie = setCookie.slice(0, setCookie.indexOf(";"));
      for (let i = 0; i < 4; i++) {
        const again = await fetch(`${gw.proxyUrl}/cookie/whoami`, { headers: { cookie: `other=1; ${cookie}` } });
        expect(again.headers.get("set-cookie")).toBeNull();
        expect(await again.text()).toBe(target);
      }
      seen.add(target);
    }
    expect(seen.size).toBe(2);
  });

  it("hashing on a route's regex capture (uri_capture) keeps a user on one target and spreads users over both", async () => {
    // The header is the fallback: a different one each time must not move the user.
    await expectOneTargetPerCaller(4, async (user, i) => (await whoami(gw, `/users/user-${user}/whoami`, { "x-user": `other-${i}` })).body);
  });

  it("lists the upstreams and their targets' health in the admin API, as Kong shows them", async () => {
    const list = (await (await fetch(`${gw.adminUrl}/upstreams`)).json()) as {
      data: { name: string; algorithm: string; targets: { target: string; weight: number }[] }[];
    };
    expect(list.data.map((u) => u.name)).toEqual(["backend", "half-off", "sticky", "cookie-sticky", "capture-sticky"]);
    expect(list.data[1]!.targets).toEqual([
      { target: a.target, weight: 100 },
      { target: b.target, weight: 0 },
    ]);
    const health = (await (await fetch(`${gw.adminUrl}/upstreams/backend/health`)).json()) as {
      total: number;
      data: { target: string; health: string; data: { addresses: { ip: string; port: number; health: string }[] } }[];
    };
    expect(health.total).toBe(2);
    expect(health.data[0]).toMatchObject({
      target: a.target,
      weight: 100,
      health: "HEALTHCHECKS_OFF",
      data: { addresses: [{ ip: "127.0.0.1", port: a.port, health: "HEALTHCHECKS_OFF" }] },
    });
    expect((await fetch(`${gw.adminUrl}/upstreams/nope/health`)).status).toBe(404);
  });

  const put = (path: string, headers: Record<string, string> = {}) => fetch(`${gw.adminUrl}${path}`, { method: "PUT", headers });

  it("lets the admin API mark a target unhealthy and healthy again (Kong's PUT .../targets/{target}/unhealthy|healthy), seen in /health and /metrics and kept over a reload", async () => {
    const state = async () => {
      const body = (await (await fetch(`${gw.adminUrl}/upstreams/backend/health`)).json()) as { data: { target: string; health: string }[] };
      return Object.fromEntries(body.data.map((t) => [t.target, t.health]));
    };
    const metric = async (health: string) =>
      (await (await fetch(`${gw.adminUrl}/metrics`)).text()).includes(
        `gateway_upstream_target_health{upstream="backend",target="${a.target}",state="${health}"} 1`,
      );

    expect((await put(`/upstreams/backend/targets/${a.target}/unhealthy`)).status).toBe(204);
    expect(await state()).toEqual({ [a.target]: "UNHEALTHY", [b.target]: "HEALTHCHECKS_OFF" });
    expect(await metric("unhealthy")).toBe(true);
    expect(await tally(gw, "/rr/whoami", 20)).toEqual({ [String(b.port)]: 20 });

    expect((await fetch(`${gw.adminUrl}/config/reload`, { method: "POST", headers: { "x-requested-by": "test" } })).status).toBe(200);
    expect((await state())[a.target]).toBe("UNHEALTHY");
    expect(await tally(gw, "/rr/whoami", 10)).toEqual({ [String(b.port)]: 10 });

    // Kong's per-address form: a target here is one address.
    expect((await put(`/upstreams/backend/targets/${a.target}/${a.target}/healthy`)).status).toBe(204);
    expect(await state()).toEqual({ [a.target]: "HEALTHCHECKS_OFF", [b.target]: "HEALTHCHECKS_OFF" });
    expect(await metric("healthchecks_off")).toBe(true);
    expect(Object.keys(await tally(gw, "/rr/whoami", 20)).sort()).toEqual([String(a.port), String(b.port)].sort());
  });

  it("answers 404 for an unknown upstream, target or address, and keeps the admin API's Host and Origin checks on these endpoints", async () => {
    expect((await put(`/upstreams/nope/targets/${a.target}/unhealthy`)).status).toBe(404);
    expect((await put("/upstreams/backend/targets/10.9.9.9:1/unhealthy")).status).toBe(404);
    expect((await put(`/upstreams/backend/targets/${a.target}/10.9.9.9:1/unhealthy`)).status).toBe(404);
    expect((await put(`/upstreams/backend/targets/${a.target}/unhealthy`, { host: "evil.example" })).status).toBe(421);
    expect((await put(`/upstreams/backend/targets/${a.target}/unhealthy`, { origin: "http://evil.example" })).status).toBe(403);
    const body = (await (await fetch(`${gw.adminUrl}/upstreams/backend/health`)).json()) as { data: { health: string }[] };
    expect(body.data.map((t) => t.health)).toEqual(["HEALTHCHECKS_OFF", "HEALTHCHECKS_OFF"]);
  });
});

describe("health checks", () => {
  let a: UpstreamProcess;
  let b: UpstreamProcess;
  let gw: GatewayProcess;
  // retries = 0: nothing but the health checks keeps requests away from a dead target.
  twoTargetsAndGateway(
    (a, b) => [
      upstreamToml(
        "watched",
        [a.target, b.target],
        `[upstreams.healthchecks.active]
http_path = "/whoami"
timeout = 0.5
[upstreams.healthchecks.active.healthy]
interval = 0.2
successes = 2
[upstreams.healthchecks.active.unhealthy]
interval = 0.2
tcp_failures = 2
http_failures = 2
timeouts = 2`,
      ),
      upstreamToml("counted", [a.target, b.target], "[upstreams.healthchecks.passive.unhealthy]\ntcp_failures = 2"),
      service("active", "watched", 0),
      service("passive", "counted", 0),
    ],
    (...started) => ([a, b, gw] = started),
  );

  const healthOf = async (upstream: string, target: string) => {
    const body = (await (await fetch(`${gw.adminUrl}/upstreams/${upstream}/health`)).json()) as { data: { target: string; health: string }[] };
    return body.data.find((t) => t.target === target)?.health;
  };

  it("mark a killed target unhealthy within interval × failures, after which no request fails, and healthy again when it is back", async () => {
    expect(await healthOf("watched", b.target)).toBe("HEALTHY");
    await b.kill();
    // interval 0.2 s × 2 failures; generous margin for a busy machine.
    const took = await waitUntil("active checks mark the target unhealthy", async () => (await healthOf("watched", b.target)) === "UNHEALTHY", 5000);
    expect(took).toBeLessThan(5000);
    expect(await tally(gw, "/active/whoami", 40)).toEqual({ [String(a.port)]: 40 });
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toContain(`gateway_upstream_target_health{upstream="watched",target="${b.target}",state="unhealthy"} 1`);
    expect(metrics).toContain(`gateway_upstream_target_health{upstream="watched",target="${a.target}",state="healthy"} 1`);
    await b.restart();
    await waitUntil("active checks mark the target healthy", async () => (await healthOf("watched", b.target)) === "HEALTHY", 5000);
    const counts = await tally(gw, "/active/whoami", 40);
    expect(counts[String(a.port)]).toBeGreaterThanOrEqual(15);
    expect(counts[String(b.port)]).toBeGreaterThanOrEqual(15);
  });

  it("count proxied failures alone (passive): at most tcp_failures requests fail, then all go to the live target; with none left, Kong's 503", async () => {
    await b.kill();
    const results = await tally(gw, "/passive/whoami", 30);
    expect(results["status 502"] ?? 0).toBeLessThanOrEqual(2);
    expect(results[String(a.port)]).toBeGreaterThanOrEqual(28);
    expect(await healthOf("counted", b.target)).toBe("UNHEALTHY");
    await a.kill();
    const failures = await tally(gw, "/passive/whoami", 4);
    expect(failures["status 502"] ?? 0).toBeLessThanOrEqual(2);
    const res = await fetch(`${gw.proxyUrl}/passive/whoami`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ message: "failure to get a peer from the ring-balancer" });
    await Promise.all([a.restart(), b.restart()]);
  });
});
