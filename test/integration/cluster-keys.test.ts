/**
 * The fleet's signing keys with two real gateways on a fresh real Redis each time: one key set
 * from the first second (the first node seeds Redis, from its key file if it has one), no key
 * dropped without its grace period, no false "redis is unreachable" line, and a rotation refused
 * with a 503 that says why while Redis is down.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileKeyStore } from "../../src/keys/file-store.ts";
import { createLogger } from "../../src/log.ts";
import { bunRuntime } from "../../src/runtime/bun.ts";
import { startGateway, type GatewayProcess, serverTable } from "../support/gateway-process.ts";
import { startRedis, type RedisProcess } from "../support/redis-process.ts";
import { waitUntil } from "../support/wait.ts";

const KEYS_SECRET = "fleet-keys-secret-0123456789abcdef";
const running: { stop(): Promise<unknown> }[] = [];

afterEach(async () => {
  for (const p of running.splice(0).reverse()) await p.stop();
});

async function freshRedis(): Promise<RedisProcess> {
  const redis = await startRedis();
  running.push(redis);
  return redis;
}

/** A key file as a standalone gateway writes it (`[keys] jwks_file`). */
async function keyFile(): Promise<{ text: string; kids: string[] }> {
  const file = join(mkdtempSync(join(tmpdir(), "fleet-keyfile-")), "jwks.json");
  const store = new FileKeyStore({ runtime: bunRuntime, file, rotationGrace: 3600, log: createLogger("error", () => {}), watch: false });
  const jwks = JSON.parse((await store.publicJwks()).body) as { keys: { kid: string }[] };
  store.close();
  return { text: readFileSync(file, "utf8"), kids: jwks.keys.map((k) => k.kid) };
}

async function gateway(redis: RedisProcess, file?: string): Promise<GatewayProcess> {
  const gw = await startGateway({
    config: `${serverTable()}
[cluster]
strategy = "redis"
redis_url = "${redis.url}"
command_timeout = 300
keys_secret = "${KEYS_SECRET}"

[keys]
jwks_file = "{{dir}}/gateway-jwks.json"
rotation_grace = 3600
`,
    ...(file ? { files: { "gateway-jwks.json": file } } : {}),
  });
  running.push(gw);
  return gw;
}

const published = async (gw: GatewayProcess) =>
  ((await (await fetch(`${gw.adminUrl}/openid-connect/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
const rotate = (gw: GatewayProcess) => fetch(`${gw.adminUrl}/openid-connect/jwks`, { method: "DELETE" });

describe("the fleet's first key set", () => {
  it("is the key file of the first node, published alike by a node without a file, from the first request", async () => {
    const redis = await freshRedis();
    const file = await keyFile();
    const a = await gateway(redis, file.text);
    const b = await gateway(redis);
    expect(await published(a)).toEqual(file.kids);
    expect(await published(b)).toEqual(file.kids);
    await Bun.sleep(1200); // past a few polls: nobody switches to another set
    expect(await published(a)).toEqual(file.kids);
    expect(await published(b)).toEqual(file.kids);
  });

  it("is one set when a node with a file and one without start together", async () => {
    const redis = await freshRedis();
    const file = await keyFile();
    const [a, b] = await Promise.all([gateway(redis, file.text), gateway(redis)]);
    const [ka, kb] = await Promise.all([published(a), published(b)]);
    expect(ka).toEqual(kb);
    await Bun.sleep(1200);
    expect(await published(a)).toEqual(ka);
    expect(await published(b)).toEqual(ka);
  });

  it("logs no 'redis is unreachable' while Redis answers", async () => {
    const redis = await freshRedis();
    const file = await keyFile();
    const a = await gateway(redis, file.text);
    await published(a);
    const b = await gateway(redis);
    await published(b);
    for (const gw of [a, b]) expect(gw.logs().filter((l) => String(l.event).startsWith("keys.local_copy"))).toEqual([]);
  });
});

describe("the first rotation on a fleet", () => {
  it("keeps the keys of the nodes' key file published for the grace period, on both nodes", async () => {
    const redis = await freshRedis();
    const file = await keyFile();
    const a = await gateway(redis, file.text);
    const b = await gateway(redis, file.text);
    expect(await published(a)).toEqual(file.kids);
    expect((await rotate(a)).status).toBe(204);
    const after = await published(a);
    expect(after).toEqual(expect.arrayContaining(file.kids));
    expect(after.length).toBe(file.kids.length * 2);
    await waitUntil("B to publish the rotation", async () => JSON.stringify(await published(b)) === JSON.stringify(after));
  });
});

describe("a Redis that restarts empty", () => {
  it("gets the fleet's set again from the nodes, which go on publishing the same keys", async () => {
    const redis = await freshRedis();
    const file = await keyFile();
    const a = await gateway(redis, file.text);
    const b = await gateway(redis);
    expect(await published(b)).toEqual(file.kids);
    await redis.kill();
    await redis.start();
    await waitUntil("a node to seed the empty Redis", async () => redis.cli(["GET", "oidc-gateway:keys:version"]).trim() !== "");
    await Bun.sleep(1200);
    expect(await published(a)).toEqual(file.kids);
    expect(await published(b)).toEqual(file.kids);
    // A rotation after it still retires the keys every IdP has cached.
    expect((await rotate(b)).status).toBe(204);
    await waitUntil("A to publish B's rotation", async () => (await published(a)).length === file.kids.length * 2);
    expect(await published(a)).toEqual(expect.arrayContaining(file.kids));
  });
});

describe("a rotation while the fleet's Redis is down", () => {
  it("is refused with 503 and the reason, and the keys stay as they were", async () => {
    const redis = await freshRedis();
    const a = await gateway(redis);
    const before = await published(a);
    await redis.kill();
    const res = await rotate(a);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ message: "the fleet's redis is unreachable; rotation refused" });
    expect(await published(a)).toEqual(before);
  });
});
