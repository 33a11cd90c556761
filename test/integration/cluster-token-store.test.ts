/**
 * The fleet's token cache against a real redis-server: two "gateways" are two TokenCaches, each
 * with its own Redis link, as two processes would have. The IdP is a counter here (the e2e
 * suite test/integration/cluster.test.ts runs the same through two real gateways and the real IdP).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { createCluster, type Cluster } from "../../src/cluster/index.ts";
import { clusterSchema } from "../../src/config/cluster.ts";
import { AuthError, IdpError } from "../../src/errors.ts";
import { createLogger } from "../../src/log.ts";
import { Metrics } from "../../src/metrics.ts";
import { TokenCache, type Fresh, type TokenCachePolicy } from "../../src/oidc/client/token-cache.ts";
import { startRedis, type RedisProcess } from "../support/redis-process.ts";
import { waitUntil } from "../support/wait.ts";

const SALT = "a-salt-shared-by-every-node-0123";
const POLICY: TokenCachePolicy = { ttl: 3600, ttlNeg: 10, maxEntries: 100 };

let redis: RedisProcess;
const clusters: Cluster[] = [];
const lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const c of clusters) await c.close();
  await redis?.stop();
});

async function node(overrides: Record<string, unknown> = {}): Promise<{ cluster: Cluster; cache: TokenCache<{ token: string }> }> {
  const config = clusterSchema().parse({ strategy: "redis", redis_url: redis.url, keys_secret: "k".repeat(32), ...overrides });
  const log = createLogger("debug", (line) => lines.push(JSON.parse(line)));
  const cluster = createCluster(config, { log, metrics: new Metrics("test", "bun") })!;
  clusters.push(cluster);
  expect(await cluster.link.ready(2000)).toBe(true);
  const shared = await cluster.tokenLayer<{ token: string }>("tokens", "client_credentials", SALT);
  return { cluster, cache: new TokenCache(POLICY, { shared }) };
}

/** A counting token endpoint: `delay` ms, then a token valid for `lifetime` s. */
function idp(delay = 30, lifetime = 300) {
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    fetch: async (): Promise<Fresh<{ token: string }>> => {
      calls++;
      await Bun.sleep(delay);
      return { value: { token: `token-${calls}-${crypto.randomUUID()}` }, expiresAt: Date.now() + lifetime * 1000 };
    },
  };
}

const key = () => `k-${crypto.randomUUID()}`;

describe("the shared token cache", () => {
  it("serves a token fetched by one gateway to another without asking the IdP again", async () => {
    const a = await node();
    const b = await node();
    const source = idp();
    const k = key();
    const first = await a.cache.get(k, source.fetch);
    const second = await b.cache.get(k, source.fetch);
    expect(first.state).toBe("miss");
    expect(second.state).toBe("shared"); // a local miss, answered by the fleet
    expect(second.state !== "negative" && second.value).toEqual(first.state !== "negative" && first.value);
    expect(source.calls).toBe(1);
    // And then from B's own memory.
    expect((await b.cache.get(k, source.fetch)).state).toBe("hit");
  });

  it("makes one token endpoint call for 100 concurrent cold requests split over two gateways", async () => {
    const a = await node();
    const b = await node();
    const source = idp(80);
    const k = key();
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => (i % 2 ? a : b).cache.get(k, source.fetch)));
    expect(source.calls).toBe(1);
    const tokens = new Set(results.map((r) => (r.state === "negative" ? "" : r.value.token)));
    expect(tokens.size).toBe(1);
  });

  it("stores values that cannot be read in Redis: no token, no claim, sealed under the key", async () => {
    const a = await node();
    const k = key();
    const got = await a.cache.get(k, async () => ({
      value: { token: "eyJhbGciOiJSUzI1NiJ9.secret-claims.signature" },
      expiresAt: Date.now() + 60_000,
    }));
    expect(got.state).toBe("miss");
    const keys = redis.cli(["--scan", "--pattern", "*"]).split("\n").filter(Boolean);
    const mine = keys.find((x) => x.endsWith(k))!;
    expect(mine).toBeDefined();
    const dump = redis.cli(["--no-raw", "GET", mine]);
    expect(dump).not.toContain("eyJ");
    expect(dump).not.toContain("secret-claims");
    // TTL is Redis's: the token's remaining lifetime minus the safety margin.
    const ttl = Number(redis.cli(["PTTL", mine]).trim());
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(54_000);
  });

  it("shares nothing between nodes with different salts (and never mixes their tokens)", async () => {
    const a = await node();
    const other = await node();
    const shared = await other.cluster.tokenLayer<{ token: string }>("tokens", "client_credentials", "another-salt-0123456789abcdef");
    const b = new TokenCache<{ token: string }>(POLICY, { shared });
    const source = idp();
    const k = key();
    await a.cache.get(k, source.fetch);
    await b.get(k, source.fetch);
    expect(source.calls).toBe(2);
  });

  it("does not share rejections: the waiting gateway asks the IdP itself once the lock is released", async () => {
    const a = await node();
    const b = await node();
    let calls = 0;
    const refuse = async (): Promise<Fresh<{ token: string }>> => {
      calls++;
      await Bun.sleep(50);
      throw new AuthError({ error: "invalid_client" });
    };
    const k = key();
    const settled = await Promise.allSettled([a.cache.get(k, refuse), b.cache.get(k, refuse)]);
    expect(settled.map((s) => s.status)).toEqual(["rejected", "rejected"]);
    expect(calls).toBe(2);
    expect(lines.some((l) => String(JSON.stringify(l)).includes("invalid_client"))).toBe(false);
  });

  it("refreshes ahead once for the fleet: a shared entry past 80 % of its TTL is renewed by one gateway", async () => {
    const a = await node();
    const b = await node();
    const k = key();
    let calls = 0;
    const fetch = async (): Promise<Fresh<{ token: string }>> => {
      calls++;
      return { value: { token: `t${calls}` }, expiresAt: Date.now() + 2000 };
    };
    await a.cache.get(k, fetch); // TTL 1.8 s, refresh after 1.44 s
    await Bun.sleep(1500);
    a.cache.clear();
    b.cache.clear();
    const [ra, rb] = await Promise.all([a.cache.get(k, fetch), b.cache.get(k, fetch)]);
    expect(calls).toBe(2);
    expect(ra.state !== "negative" && ra.value.token).toBeDefined();
    expect(rb.state !== "negative" && rb.value.token).toBeDefined();
  });

  it("keeps the fleet's still-valid token when the IdP fails a refresh", async () => {
    const a = await node();
    const k = key();
    await a.cache.get(k, async () => ({ value: { token: "old" }, expiresAt: Date.now() + 2000 }));
    await Bun.sleep(1500);
    a.cache.clear();
    const r = await a.cache.get(k, async () => {
      throw new IdpError("unreachable", "down");
    });
    expect(r.state !== "negative" && r.value.token).toBe("old");
  });
});

describe("the shared token cache while Redis is down", () => {
  it("fetches locally without waiting, keeps serving cached tokens, and shares again once Redis is back", async () => {
    const a = await node();
    const b = await node();
    const source = idp(5);
    const cached = key();
    await a.cache.get(cached, source.fetch);
    await redis.kill();
    // The link learns it from the closed socket, which a busy machine may deliver after more than 100 ms.
    await waitUntil("the link to see Redis gone", () => !a.cluster.link.available);
    expect(a.cluster.degradedReason()).toContain("unreachable");
    // The cached one: from memory.
    expect((await a.cache.get(cached, source.fetch)).state).toBe("hit");
    // A cold one: straight to the IdP, fast.
    const started = performance.now();
    const cold = await b.cache.get(key(), source.fetch);
    expect(cold.state).toBe("miss");
    expect(performance.now() - started).toBeLessThan(200);
    expect(lines.some((l) => l.event === "cluster.degraded")).toBe(true);

    await redis.start();
    const deadline = Date.now() + 5000;
    while (!(a.cluster.link.available && b.cluster.link.available) && Date.now() < deadline) await Bun.sleep(50);
    expect(a.cluster.link.available && b.cluster.link.available).toBe(true);
    expect(lines.some((l) => l.event === "cluster.recovered")).toBe(true);
    const k = key();
    const before = source.calls;
    await a.cache.get(k, source.fetch);
    await b.cache.get(k, source.fetch);
    expect(source.calls).toBe(before + 1);
  });

  it("stops asking a Redis that accepts connections but no longer answers, after one command timeout", async () => {
    const a = await node({ command_timeout: 200 });
    const source = idp(5);
    redis.pause();
    try {
      const t0 = performance.now();
      await a.cache.get(key(), source.fetch);
      expect(performance.now() - t0).toBeLessThan(600);
      expect(a.cluster.link.available).toBe(false);
      const t1 = performance.now();
      await a.cache.get(key(), source.fetch);
      expect(performance.now() - t1).toBeLessThan(100);
    } finally {
      redis.resume();
    }
    const deadline = Date.now() + 5000;
    while (!a.cluster.link.available && Date.now() < deadline) await Bun.sleep(50);
    expect(a.cluster.link.available).toBe(true);
  });
});

describe("the Redis link under a busy CPU", () => {
  it("counts only Redis's silence against command_timeout, not a stall of the gateway's own longer than it", async () => {
    const a = await node({ command_timeout: 100 });
    const logged = lines.length;
    for (let i = 0; i < 10; i++) {
      const reply = a.cluster.link.get(key());
      // The event loop blocked past the timeout while Redis answered at once (a busy CPU, a long GC).
      const until = performance.now() + 300;
      while (performance.now() < until) {}
      expect(await reply).toBeNull();
      expect(a.cluster.link.available).toBe(true);
    }
    expect(lines.slice(logged).filter((l) => l.event === "cluster.degraded")).toEqual([]);
  });
});
