/**
 * The fleet's signing keys against a real redis-server: generated once for every node, the
 * same public JWKS everywhere, a rotation on one node adopted by the others within a second,
 * sealed in Redis, and what happens while Redis is down.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCluster, type Cluster } from "../../src/cluster/index.ts";
import { clusterSchema } from "../../src/config/cluster.ts";
import type { KeyStore } from "../../src/keys/types.ts";
import { createLogger } from "../../src/log.ts";
import { Metrics } from "../../src/metrics.ts";
import { startRedis, type RedisProcess } from "../support/redis-process.ts";
import { waitUntil } from "../support/wait.ts";

const SECRET = "the-fleet-keys-secret-0123456789abcdef";

let redis: RedisProcess;
const clusters: Cluster[] = [];
const stores: KeyStore[] = [];
const lines: Record<string, any>[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const s of stores) s.close();
  for (const c of clusters) await c.close();
  await redis?.stop();
});

const runtime = {
  readTextFile: (path: string) => Bun.file(path).text(),
  async writeFileAtomic(path: string, data: string, mode: number) {
    await Bun.write(`${path}.tmp`, data);
    const { chmodSync, renameSync } = await import("node:fs");
    chmodSync(`${path}.tmp`, mode);
    renameSync(`${path}.tmp`, path);
  },
};

async function node(options: {
  prefix: string;
  secret?: string;
  file?: string;
  signingDelay?: number;
}): Promise<{ cluster: Cluster; keys: KeyStore; file: string }> {
  const config = clusterSchema().parse({
    strategy: "redis",
    redis_url: redis.url,
    keys_secret: options.secret ?? SECRET,
    key_prefix: options.prefix,
  });
  const cluster = createCluster(config, { log: createLogger("debug", (l) => lines.push(JSON.parse(l))), metrics: new Metrics("test", "bun") })!;
  clusters.push(cluster);
  await cluster.link.ready(2000);
  const file = options.file ?? join(mkdtempSync(join(tmpdir(), "cluster-keys-")), "jwks.json");
  const keys = (await cluster.keyStore(runtime, { jwks_file: file, rotation_grace: 3600, rotation_signing_delay: options.signingDelay ?? 0 }))!;
  stores.push(keys);
  return { cluster, keys, file };
}

const kids = async (k: KeyStore) => JSON.parse((await k.publicJwks()).body).keys.map((j: { kid: string }) => j.kid) as string[];

describe("the fleet's signing keys", () => {
  it("are generated once and published alike by every node", async () => {
    const prefix = "k1:";
    const [a, b] = await Promise.all([node({ prefix }), node({ prefix })]);
    const [ja, jb] = await Promise.all([a.keys.publicJwks(), b.keys.publicJwks()]);
    expect(ja.body).toBe(jb.body);
    expect(ja.etag).toBe(jb.etag);
    const sa = await a.keys.signingKey({ alg: "ES256" });
    const sb = await b.keys.signingKey({ alg: "ES256" });
    expect(sa.kid).toBe(sb.kid);
    expect(lines.filter((l) => l.event === "keys.generated").length).toBe(1);
  });

  it("follow a rotation made on another node within a second, keeping the old public keys for the grace period", async () => {
    const prefix = "k2:";
    const a = await node({ prefix });
    const b = await node({ prefix });
    const before = (await b.keys.signingKey({ alg: "ES256" })).kid;
    const rotation = await a.keys.rotate();
    await waitUntil("the rotation to reach node b", async () => (await b.keys.signingKey({ alg: "ES256" })).kid !== before, 1000, 10);
    const after = await b.keys.signingKey({ alg: "ES256" });
    expect(rotation.kids).toContain(after.kid);
    expect(await kids(b.keys)).toEqual(await kids(a.keys));
    expect(await kids(b.keys)).toContain(before);
  });

  it("end a rotation's signing delay only for a JWKS that publishes its keys: a fetch of the set before it, handled after it, changes nothing", async () => {
    const prefix = "k6:";
    const a = await node({ prefix, signingDelay: 60 });
    const b = await node({ prefix, signingDelay: 60 });
    await a.keys.signingKey({ alg: "ES256" });
    const first = await a.keys.rotate();
    await waitUntil("the first rotation to reach node b", async () => (await b.keys.publicJwks()).kids.includes(first.kids[0]!), 1000, 10);
    // An IdP fetches b's JWKS (the first rotation's keys, its delay still running); a second
    // rotation on a is stored before b handles that fetch: b finds the second set in Redis.
    const served = await b.keys.publicJwks();
    const second = await a.keys.rotate();
    b.keys.jwksServed(served);
    await Bun.sleep(300);
    const previous = (await a.keys.previousSigningKey({ alg: "ES256" }))!.kid;
    expect(first.kids).toContain(previous);
    for (const n of [a, b]) expect((await n.keys.signingKey({ alg: "ES256" })).kid).toBe(previous);
    // A fetch of the second set ends its delay, for the whole fleet.
    await waitUntil("the second rotation to reach node b", async () => (await b.keys.publicJwks()).kids.includes(second.kids[0]!), 1000, 10);
    b.keys.jwksServed(await b.keys.publicJwks());
    await waitUntil(
      "node a to sign with the second rotation's key",
      async () => second.kids.includes((await a.keys.signingKey({ alg: "ES256" })).kid),
      2000,
      10,
    );
  });

  it("are sealed in Redis, and written locally (0600) for a restart without Redis", async () => {
    const prefix = "k3:";
    const a = await node({ prefix });
    await a.keys.signingKey({ alg: "ES256" });
    const dump = redis.cli(["--no-raw", "GET", `${prefix}keys:set`]);
    expect(dump.length).toBeGreaterThan(100);
    expect(dump).not.toContain('"d"');
    expect(dump).not.toContain("kty");
    expect(statSync(a.file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(a.file, "utf8")).keys.length).toBeGreaterThan(0);
  });

  it("do not open with another keys_secret (a node with the wrong secret signs nothing)", async () => {
    const prefix = "k4:";
    const a = await node({ prefix });
    await a.keys.publicJwks();
    const wrong = await node({ prefix, secret: "not-the-fleet-secret-0123456789abcdef" });
    await expect(wrong.keys.signingKey({ alg: "ES256" })).rejects.toThrow("keys_secret");
  });

  it("keep signing with the keys in memory while Redis is down, refuse to rotate, and restart from the local copy", async () => {
    const prefix = "k5:";
    const a = await node({ prefix });
    const kid = (await a.keys.signingKey({ alg: "ES256" })).kid;
    await redis.kill();
    try {
      await Bun.sleep(50);
      expect((await a.keys.signingKey({ alg: "ES256" })).kid).toBe(kid);
      await expect(a.keys.rotate()).rejects.toThrow("unreachable");
      const restarted = await node({ prefix, file: a.file });
      expect((await restarted.keys.signingKey({ alg: "ES256" })).kid).toBe(kid);
    } finally {
      await redis.start();
    }
  });
});
