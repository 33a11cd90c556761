/**
 * The `rate-limiting` plugin end to end: callers authenticated by the real test IdP and mapped to
 * consumers, counters in the gateway (`local`) and in a real Redis shared by two gateways, and
 * Redis killed under them (`fault_tolerant`).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { startGateway, type GatewayProcess, serverTable } from "../support/gateway-process.ts";
import { startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { startRedis, type RedisProcess } from "../support/redis-process.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

const SECRETS = { billing: "billing-secret-0123456789", shipping: "shipping-secret-0123456789" };
type Client = keyof typeof SECRETS;

let idp: IdpProcess;
let upstream: EchoUpstream;
let redis: RedisProcess;
let a: GatewayProcess;
let b: GatewayProcess;

const route = (name: string) => `[[routes]]\nname = "${name}"\nservice = "echo"\npaths = ["/${name}"]\n`;
const limit = (routeName: string, settings: string) => `[[plugins]]\nname = "rate-limiting"\nroute = "${routeName}"\n[plugins.config]\n${settings}\n`;
const oidc = (routeName: string) =>
  `[[plugins]]\nname = "openid-connect"\nroute = "${routeName}"\n[plugins.config]\nissuer = "${idp.issuer}"\nconsumer_claim = ["client_id"]\n`;
const ownRedis = () => `[plugins.config.redis]\nhost = "127.0.0.1"\nport = ${redis.port}\ntimeout = 500\n`;

function config(): string {
  return `${serverTable()}
[cluster]
strategy = "redis"
redis_url = "${redis.url}"
items = ["dpop_replay"]
command_timeout = 500

[[services]]
name = "echo"
url = "${upstream.url}/anything"
read_timeout = 5000

[[consumers]]
username = "billing-app"
custom_id = "billing"

[[consumers]]
username = "shipping"

${["per-consumer", "per-ip", "hidden", "shared", "cluster-shared", "strict", "by-header"].map(route).join("\n")}
${oidc("per-consumer")}
${limit("per-consumer", "minute = 5")}
${limit("per-ip", 'minute = 5\nhour = 100\nlimit_by = "ip"')}
${limit("hidden", 'minute = 2\nlimit_by = "ip"\nhide_client_headers = true\nerror_code = 503\nerror_message = "Slow down"')}
${oidc("shared")}
${limit("shared", 'minute = 5\npolicy = "redis"')}${ownRedis()}
${limit("cluster-shared", 'minute = 5\nlimit_by = "ip"\npolicy = "redis"')}
${limit("strict", 'minute = 5\nlimit_by = "ip"\npolicy = "redis"\nfault_tolerant = false')}${ownRedis()}
${limit("by-header", 'minute = 2\nlimit_by = "header"\nheader_name = "x-tenant"')}
`;
}

beforeAll(async () => {
  upstream = startEchoUpstream();
  redis = await startRedis();
  idp = await startIdpProcess({
    options: { extraClients: Object.entries(SECRETS).map(([client_id, client_secret]) => ({ client_id, client_secret })) },
  });
  [a, b] = await Promise.all([startGateway({ config: config() }), startGateway({ config: config() })]);
}, 60_000);

afterAll(async () => {
  for (const g of [a, b]) {
    const log = g?.output.join("\n") ?? "";
    for (const secret of Object.values(SECRETS)) expect(log).not.toContain(secret);
    await g?.stop();
  }
  await idp?.stop();
  await redis?.stop();
  await upstream?.stop();
});

/** Waits for a fresh minute when the current one ends within `margin` ms: a burst must fit in one window. */
async function withinOneMinute(margin = 8000): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < margin) await Bun.sleep(left + 100);
}

async function call(gw: GatewayProcess, path: string, client?: Client, headers: Record<string, string> = {}) {
  const res = await fetch(`${gw.proxyUrl}${path}`, {
    headers: { ...(client ? { authorization: `Basic ${btoa(`${client}:${SECRETS[client]}`)}` } : {}), ...headers },
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text };
}

describe("rate-limiting with the local policy", () => {
  it("lets 5 requests a minute through per consumer, then answers 429 with Retry-After", async () => {
    await withinOneMinute();
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await call(a, "/per-consumer", "billing");
      statuses.push(res.status);
      expect(res.headers.get("ratelimit-limit")).toBe("5");
      expect(res.headers.get("ratelimit-remaining")).toBe(String(4 - i));
      expect(res.headers.get("x-ratelimit-limit-minute")).toBe("5");
      expect(res.headers.get("x-ratelimit-remaining-minute")).toBe(String(4 - i));
      const reset = Number(res.headers.get("ratelimit-reset"));
      expect(reset).toBeGreaterThanOrEqual(1);
      expect(reset).toBeLessThanOrEqual(60);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    const refused = await call(a, "/per-consumer", "billing");
    expect(refused.status).toBe(429);
    expect(JSON.parse(refused.text)).toEqual({ message: "API rate limit exceeded" });
    expect(refused.headers.get("content-type")).toContain("application/json");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers.get("retry-after"))).toBeLessThanOrEqual(60);
    expect(refused.headers.get("ratelimit-remaining")).toBe("0");
    // Another consumer has its own count.
    expect((await call(a, "/per-consumer", "shipping")).status).toBe(200);
  });

  it("counts by client IP, and shows the window with the fewest requests left", async () => {
    await withinOneMinute();
    for (let i = 0; i < 5; i++) {
      const res = await call(a, "/per-ip");
      expect(res.status).toBe(200);
      expect(res.headers.get("x-ratelimit-limit-hour")).toBe("100");
      expect(res.headers.get("x-ratelimit-remaining-hour")).toBe(String(99 - i));
      expect(res.headers.get("ratelimit-limit")).toBe("5");
    }
    const refused = await call(a, "/per-ip");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("x-ratelimit-remaining-minute")).toBe("0");
    expect(refused.headers.get("x-ratelimit-remaining-hour")).toBe("95"); // a refused request is not counted
  });

  it("hides the headers when asked, and answers with error_code and error_message", async () => {
    await withinOneMinute();
    for (let i = 0; i < 2; i++) {
      const res = await call(a, "/hidden");
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit-limit")).toBeNull();
      expect(res.headers.get("x-ratelimit-limit-minute")).toBeNull();
    }
    const refused = await call(a, "/hidden");
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.text)).toEqual({ message: "Slow down" });
    expect(refused.headers.get("retry-after")).not.toBeNull();
  });

  it("counts by a header's value, and by IP without it", async () => {
    await withinOneMinute();
    expect((await call(a, "/by-header", undefined, { "x-tenant": "t1" })).status).toBe(200);
    expect((await call(a, "/by-header", undefined, { "x-tenant": "t1" })).status).toBe(200);
    expect((await call(a, "/by-header", undefined, { "x-tenant": "t1" })).status).toBe(429);
    expect((await call(a, "/by-header", undefined, { "x-tenant": "t2" })).status).toBe(200);
    expect((await call(a, "/by-header")).status).toBe(200);
  });
});

describe("rate-limiting with the redis policy", () => {
  it("gives two gateways on one Redis one limit: 10 requests split over both, 5 pass", async () => {
    await withinOneMinute();
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await call(i % 2 ? b : a, "/shared", "billing")).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(5);
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
  });

  it("shares the count through the [cluster] Redis too, under its key prefix", async () => {
    await withinOneMinute();
    const statuses = await Promise.all(Array.from({ length: 10 }, (_, i) => call(i % 2 ? b : a, "/cluster-shared").then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(redis.cli(["--scan", "--pattern", "oidc-gateway:ratelimit:*"]).trim()).not.toBe("");
  });

  it("lets requests through uncounted when Redis is gone (fault_tolerant), or answers 500 when not", async () => {
    await redis.kill();
    const tolerant = await call(b, "/shared", "shipping");
    expect(tolerant.status).toBe(200);
    expect(tolerant.headers.get("ratelimit-limit")).toBeNull();
    const strict = await call(b, "/strict");
    expect(strict.status).toBe(500);
    expect(JSON.parse(strict.text)).toEqual({ message: "An unexpected error occurred" });
    await b.waitForLog((l) => l.event === "rate_limiting.store_unavailable");
  });
});
