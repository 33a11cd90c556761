/**
 * What 100 000 cached client-credentials tokens hold, apart from the fill's garbage: builds the
 * real TokenCache in this process with entries shaped as the client_credentials flow stores them
 * (a ~900-byte JWT from distinct claims, the claims parsed from it as jose does and kept as
 * token-flow.ts keeps them, a keyed-HMAC key, the upstream header rendered for each grant), then
 * collects garbage and reports RSS and the JavaScriptCore heap per entry.
 *
 * Local entries are packed as the flow packs them (grantCodec: the token's bytes in a slab);
 * `--strings` keeps each token as its own JS string, as before.
 *
 * `--garbage N` makes N KiB of short-lived objects and strings per token, 64 tokens in flight,
 * as a request through the gateway does (the real fill's garbage), so what the entries pin of it
 * shows in the settled figure.
 *
 *   bun bench/token-memory.ts [--count 100000] [--no-render] [--all-claims] [--strings] [--garbage 16]
 */
import { heapStats } from "bun:jsc";
import { createHmac } from "node:crypto";
import { loadavg } from "node:os";
import { createKeyedHash } from "../src/oidc/client/cache-key.ts";
import { TokenCache } from "../src/oidc/client/token-cache.ts";
import "../src/plugins/registry.ts"; // first: token-flow.ts alone enters the plugins' import cycle midway
import { claimsKept, grantCodec } from "../src/plugins/openid-connect/authn/token-flow.ts";
import { createUpstreamHeaders, type Grant } from "../src/plugins/openid-connect/mutate.ts";
import { keycloakServiceClaims } from "./lib/fake-idp.ts";

const argv = process.argv.slice(2);
const count = Number(argv[argv.indexOf("--count") + 1] || 0) || 100_000;
const render = !argv.includes("--no-render");
const allClaims = argv.includes("--all-claims");
const strings = argv.includes("--strings");
const garbageKiB = argv.includes("--garbage") ? Number(argv[argv.indexOf("--garbage") + 1]) : 0;

const b64u = (s: string) => Buffer.from(s).toString("base64url");
const header = b64u(JSON.stringify({ alg: "ES256", typ: "JWT", kid: "bench" }));
const signature = b64u("x".repeat(64)); // ES256: 64 bytes
const issuer = "http://127.0.0.1:40000/realms/bench";
const decoder = new TextDecoder();

function jwt(clientId: string): string {
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    ...keycloakServiceClaims(clientId),
    iss: issuer,
    sub: crypto.randomUUID(),
    aud: "account",
    jti: crypto.randomUUID(),
    iat: now,
    exp: now + 3600,
  };
  return `${header}.${b64u(JSON.stringify(payload))}.${signature}`;
}

const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
function snapshot(label: string, base?: { rss: number; heap: number }) {
  Bun.gc(true);
  const rss = process.memoryUsage.rss();
  const h = heapStats();
  const per = base ? ` | Δrss/entry ${((rss - base.rss) / count).toFixed(0)} B, Δheap/entry ${((h.heapSize - base.heap) / count).toFixed(0)} B` : "";
  console.log(
    `${label.padEnd(28)} rss ${mib(rss)} MiB  heapSize ${mib(h.heapSize)} MiB  extra ${mib(h.extraMemorySize)} MiB  objects ${h.objectCount}${per}`,
  );
  return { rss, heap: h.heapSize, h };
}

// Other tenants of the machine change how fast the fill goes and how much of its garbage is left.
const load = () =>
  `load average ${loadavg()
    .map((n) => n.toFixed(1))
    .join(" ")}`;
console.log(load());
const base = snapshot("empty");
const hash = await createKeyedHash("salt", (key) => (data) => createHmac("sha256", key).update(data).digest("base64url"));
// The defaults of client-credentials.toml: no claim headers, no audience or scope requirements;
// `credential_claim` defaults to ["sub"] (X-Credential-Identifier), so each grant keeps `sub`.
const keep = claimsKept({
  upstream_headers_claims: [],
  audience_required: [],
  audience_claim: ["aud"],
  scopes_required: [],
  scopes_claim: ["scope"],
  credential_claim: ["sub"],
});
const cache = new TokenCache<Grant>(
  { ttl: 300, ttlNeg: 30, ttlResurrect: 0, maxEntries: 200_000 },
  allClaims ? {} : { keep, codec: strings ? undefined : grantCodec() },
);
const upstream = createUpstreamHeaders({
  upstream_access_token_header: { name: "authorization", prefix: "Bearer " },
  upstream_headers_claims: [],
  upstream_headers_names: [],
} as never);
const fakeContext = { var: { upstreamHeaders: new Headers() } } as never;
const expiresAt = Date.now() + 3600_000;
/** About `kib` KiB of objects and strings of a request's sizes, some kept until the request ends. */
function requestGarbage(kib: number, i: number): unknown[] {
  const held: unknown[] = [];
  for (let made = 0; made < kib * 1024; ) {
    const n = 16 + ((i * 7 + made) % 200);
    held.push({ i, s: `${"h".repeat(n)}${i}`, a: [made, n], o: { made } });
    made += 2 * n + 96;
  }
  return held;
}

const inFlight: unknown[][] = [];
for (let i = 0; i < count; i++) {
  const clientId = `bench-${i}`;
  if (garbageKiB > 0) {
    inFlight.push(requestGarbage(garbageKiB, i));
    if (inFlight.length > 64) inFlight.shift();
  }
  const key = await hash([issuer, `${issuer}/protocol/openid-connect/token`, clientId, "bench-secret", '[["openid"],[],"client_secret_basic"]']);
  const result = await cache.get(key, async () => {
    const token = jwt(clientId);
    const claims = JSON.parse(decoder.decode(Buffer.from(token.split(".")[1]!, "base64url")));
    return { value: { token, claims }, expiresAt };
  });
  if (render && result.state !== "negative") upstream(fakeContext, result.value);
}
inFlight.length = 0;
const full = snapshot(`${count} entries`, base);
// The allocator gives the fill's garbage back within seconds, in steps (docs/benchmarks.md): the
// lowest RSS of 1 s samples over `--settle` seconds (default 15) is what the cache itself holds.
const settleSeconds = Number(argv[argv.indexOf("--settle") + 1] || 0) || 15;
let settled = Infinity;
for (let i = 0; i < settleSeconds; i++) {
  await Bun.sleep(1000);
  settled = Math.min(settled, process.memoryUsage.rss());
}
console.log(
  `${"settled".padEnd(28)} rss ${mib(settled)} MiB | Δrss/entry ${((settled - base.rss) / count).toFixed(0)} B (lowest of ${settleSeconds} 1 s samples)`,
);
const top = Object.entries(full.h.objectTypeCounts)
  .sort((a, b) => b[1] - a[1])
  .slice(0, 12);
console.log("object types:", top.map(([t, n]) => `${t} ${n}`).join(", "));
cache.clear();
snapshot("cleared", base);
console.log(load());
