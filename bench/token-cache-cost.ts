/**
 * In-process CPU cost (process CPU time, so other tenants of the machine count less) of a cached client-credentials lookup (TokenCache.get on a hit), tokens
 * kept as JS strings against packed in a slab (grantCodec), interleaved rounds, medians:
 * - one key: what scenario 4 does (the value stays among the recently served, never unpacked);
 * - N keys round-robin (default 100 000): every hit unpacks its token (the worst case).
 *
 *   bun bench/token-cache-cost.ts [--keys 100000] [--rounds 7]
 */
import "../src/plugins/registry.ts"; // first: token-flow.ts alone enters the plugins' import cycle midway
import { TokenCache } from "../src/oidc/client/token-cache.ts";
import { grantCodec } from "../src/plugins/openid-connect/authn/token-flow.ts";
import type { Grant } from "../src/plugins/openid-connect/mutate.ts";

const argv = process.argv.slice(2);
const arg = (name: string, d: number) => Number(argv[argv.indexOf(name) + 1] || 0) || d;
const keys = arg("--keys", 100_000);
const rounds = arg("--rounds", 7);
const b64u = (s: string | Uint8Array) => Buffer.from(s).toString("base64url");
const header = b64u(JSON.stringify({ alg: "ES256", typ: "JWT", kid: "bench" }));
const token = (i: number) =>
  `${header}.${b64u(JSON.stringify({ sub: crypto.randomUUID(), client_id: `bench-${i}`, scope: "profile email", pad: "x".repeat(600) }))}.${b64u(crypto.getRandomValues(new Uint8Array(64)))}`;
const expiresAt = Date.now() + 3600_000;

async function build(packed: boolean) {
  const cache = new TokenCache<Grant>({ ttl: 300, ttlNeg: 30, maxEntries: keys + 10 }, packed ? { codec: grantCodec() } : {});
  const names = Array.from({ length: keys }, (_, i) => `key-${i}-${"k".repeat(32)}`);
  for (let i = 0; i < keys; i++) await cache.get(names[i]!, async () => ({ value: { token: token(i), claims: undefined }, expiresAt }));
  return { cache, names };
}

const never = async (): Promise<never> => {
  throw new Error("a hit was expected");
};
async function nsPerGet(c: Awaited<ReturnType<typeof build>>, spread: boolean, n: number): Promise<number> {
  let sink = 0;
  const t = process.cpuUsage(); // CPU time, not wall time: the machine is shared
  for (let i = 0; i < n; i++) {
    const r = await c.cache.get(c.names[spread ? i % keys : 0]!, never);
    if (r.state !== "negative") sink += r.value.token.length;
  }
  if (sink === 0) throw new Error("nothing read");
  const used = process.cpuUsage(t);
  return ((used.user + used.system) * 1000) / n;
}

const variants = { strings: await build(false), slab: await build(true) };
const results: Record<string, number[]> = {};
for (let r = 0; r < rounds; r++) {
  for (const [name, c] of r % 2 ? Object.entries(variants).reverse() : Object.entries(variants)) {
    (results[`${name}, one key`] ??= []).push(await nsPerGet(c, false, 100_000));
    (results[`${name}, ${keys} keys round-robin`] ??= []).push(await nsPerGet(c, true, keys));
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (const [name, xs] of Object.entries(results))
  console.log(`${name.padEnd(40)} ${median(xs).toFixed(0).padStart(6)} ns CPU per get (median of ${rounds})`);
