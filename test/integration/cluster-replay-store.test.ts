/**
 * DPoP replay detection across a fleet, against a real redis-server: a proof accepted by one
 * gateway is refused by the others, for as long as it could be accepted, and what a check does
 * while Redis is down (`dpop_replay_fallback`).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { createCluster, type Cluster } from "../../src/cluster/index.ts";

import { clusterSchema } from "../../src/config/cluster.ts";
import { createLogger } from "../../src/log.ts";
import { Metrics } from "../../src/metrics.ts";
import { createMemoryReplayStore, replayKey, type ReplayStore } from "../../src/oidc/resource/replay-store.ts";
import { startRedis, type RedisProcess } from "../support/redis-process.ts";
import { ReplayStoreUnavailableError } from "../../src/errors.ts";

let redis: RedisProcess;
const clusters: Cluster[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const c of clusters) await c.close();
  await redis?.stop();
});

async function gateway(overrides: Record<string, unknown> = {}): Promise<{ cluster: Cluster; store: ReplayStore }> {
  const config = clusterSchema().parse({ strategy: "redis", redis_url: redis.url, keys_secret: "k".repeat(32), ...overrides });
  const cluster = createCluster(config, { log: createLogger("error", () => {}), metrics: new Metrics("test", "bun") })!;
  clusters.push(cluster);
  await cluster.link.ready(2000);
  return { cluster, store: cluster.replayStore(createMemoryReplayStore({ maxEntries: 1000 })) };
}

const proof = async () => replayKey("jkt-" + crypto.randomUUID(), crypto.randomUUID());

describe("the fleet's DPoP replay store", () => {
  it("refuses on gateway B a proof accepted by gateway A", async () => {
    const a = await gateway();
    const b = await gateway();
    const key = await proof();
    const expiresAt = Date.now() + 60_000;
    expect(await a.store.checkAndRecord(key, expiresAt)).toBe(true);
    expect(await b.store.checkAndRecord(key, expiresAt)).toBe(false);
    expect(await a.store.checkAndRecord(key, expiresAt)).toBe(false);
  });

  it("lets exactly one of many gateways racing with the same proof accept it", async () => {
    const nodes = await Promise.all([gateway(), gateway(), gateway()]);
    const key = await proof();
    const verdicts = await Promise.all(
      nodes.flatMap((n) => [n.store.checkAndRecord(key, Date.now() + 60_000), n.store.checkAndRecord(key, Date.now() + 60_000)]),
    );
    expect(verdicts.filter(Boolean).length).toBe(1);
  });

  it("keeps a record for the proof's remaining lifetime only (Redis TTL), under a hash of jkt and jti", async () => {
    const a = await gateway();
    const key = await proof();
    expect(await a.store.checkAndRecord(key, Date.now() + 30_000)).toBe(true);
    const ttl = Number(redis.cli(["PTTL", `oidc-gateway:dpop:${key}`]).trim());
    expect(ttl).toBeGreaterThan(28_000);
    expect(ttl).toBeLessThanOrEqual(30_000);
    expect(key).toMatch(/^[\w-]{22}$/);
  });

  it("uses the local store only when dpop_replay is not in items", async () => {
    const a = await gateway({ items: ["tokens"] });
    const b = await gateway({ items: ["tokens"] });
    const key = await proof();
    expect(await a.store.checkAndRecord(key, Date.now() + 60_000)).toBe(true);
    expect(await b.store.checkAndRecord(key, Date.now() + 60_000)).toBe(true);
  });
});

describe("the replay check while Redis is down", () => {
  it('falls back to the gateway\'s own memory ("local"): a replay to the same gateway is still refused', async () => {
    const a = await gateway();
    const seenBefore = await proof();
    expect(await a.store.checkAndRecord(seenBefore, Date.now() + 60_000)).toBe(true);
    await redis.kill();
    try {
      await Bun.sleep(50);
      expect(await a.store.checkAndRecord(seenBefore, Date.now() + 60_000)).toBe(false);
      const fresh = await proof();
      expect(await a.store.checkAndRecord(fresh, Date.now() + 60_000)).toBe(true);
      expect(await a.store.checkAndRecord(fresh, Date.now() + 60_000)).toBe(false);
    } finally {
      await redis.start();
    }
  });

  it('refuses DPoP requests with a 503 error when dpop_replay_fallback = "refuse"', async () => {
    const a = await gateway({ dpop_replay_fallback: "refuse" });
    await redis.kill();
    try {
      await Bun.sleep(50);
      const error = await Promise.resolve(a.store.checkAndRecord(await proof(), Date.now() + 60_000)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ReplayStoreUnavailableError);
      expect((error as ReplayStoreUnavailableError).status).toBe(503);
    } finally {
      await redis.start();
    }
    const deadline = Date.now() + 5000;
    while (!a.cluster.link.available && Date.now() < deadline) await Bun.sleep(50);
    expect(await a.store.checkAndRecord(await proof(), Date.now() + 60_000)).toBe(true);
  });
});
