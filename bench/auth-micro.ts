/**
 * In-process CPU per request of the authenticated paths, without sockets: the proxy app built
 * from a config with openid-connect, an upstream fetch that answers at once, issuers served
 * in-process. Scenarios as make bench's: plain (3), client credentials cached with Basic on every
 * request (4), one bearer RS256 token (5), 1 000 tokens round-robin (5k), bearer + a fresh DPoP
 * proof per request (6). Prints µs/req and the cost over the plain route; source trees side by
 * side (interleaved rounds, medians) for an A/B.
 * Run: bun bench/auth-micro.ts [--only 4,5] [--quick] [dir ...]   (default: this checkout; --quick: 3 shorter rounds)
 *      bun --cpu-prof-md bench/auth-micro.ts --only 5 --profile   (one scenario, long, for a profile)
 * The harness (loading a tree, timing, medians) is bench/lib/micro-harness.ts.
 */
import { exportJWK, generateKeyPair, SignJWT, calculateJwkThumbprint } from "jose";
import { startFakeIdp } from "./lib/fake-idp.ts";
import { cpuPerRequest, type Handler, interleavedMedians, loadApp, microArgs, tableRow, wrkHeaders } from "./lib/micro-harness.ts";

const args = microArgs(["--only"]);
const only = args.values.has("--only") ? new Set(args.values.get("--only")!.split(",")) : undefined;
const profile = args.flags.has("--profile");
const rounds = profile ? 1 : args.rounds;

// ---- issuers: the fake IdP (client credentials, ES256) and an RS256 one for bearer tokens.
const idp = await startFakeIdp();
const rs = await generateKeyPair("RS256");
const rsJwk = { ...(await exportJWK(rs.publicKey)), kid: "bench-rs256", alg: "RS256", use: "sig" };
let rsIssuer = "";
const rsServer = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(req) {
    const path = new URL(req.url).pathname;
    if (path === "/.well-known/openid-configuration")
      return Response.json({
        issuer: rsIssuer,
        jwks_uri: `${rsIssuer}/jwks`,
        token_endpoint: `${rsIssuer}/token`,
        response_types_supported: ["code"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256"],
      });
    if (path === "/jwks") return Response.json({ keys: [rsJwk] });
    return new Response("not found", { status: 404 });
  },
});
rsIssuer = `http://127.0.0.1:${rsServer.port}`;
const AUDIENCE = "bench-api";
const bearerToken = (sub: string, extra: Record<string, unknown> = {}) =>
  new SignJWT({ client_id: "bench", scope: "profile email", ...extra })
    .setProtectedHeader({ alg: "RS256", kid: "bench-rs256", typ: "at+jwt" })
    .setIssuer(rsIssuer)
    .setSubject(sub)
    .setAudience(AUDIENCE)
    .setJti(crypto.randomUUID())
    .setIssuedAt()
    .setExpirationTime("3h")
    .sign(rs.privateKey);
const oneToken = await bearerToken("user-0");
const thousand: string[] = [];
for (let i = 0; i < 1000; i++) thousand.push(await bearerToken(`user-${i}`));

// DPoP: a token bound to an ES256 key, and fresh proofs signed ahead of the timed rounds.
const dpopKey = await generateKeyPair("ES256");
const dpopJwk = await exportJWK(dpopKey.publicKey);
const dpopToken = await bearerToken("dpop-user", { cnf: { jkt: await calculateJwkThumbprint(dpopJwk, "sha256") } });
const athOf = async (t: string) => Buffer.from(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(t))).toString("base64url");
const dpopAth = await athOf(dpopToken);
async function proofs(n: number): Promise<string[]> {
  const out: string[] = [];
  const iat = Math.floor(Date.now() / 1000);
  for (let i = 0; i < n; i++)
    out.push(
      await new SignJWT({ htm: "GET", htu: "http://127.0.0.1:8000/bench", ath: dpopAth, iat, jti: crypto.randomUUID() })
        .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk: dpopJwk })
        .sign(dpopKey.privateKey),
    );
  return out;
}

// ---- scenarios
const HEAD = `[server]\naccess_log = false\nlog_level = "error"\n[[services]]\nname = "up"\nurl = "http://127.0.0.1:9"\n[[routes]]\nname = "all"\nservice = "up"\npaths = ["/"]\n`;
const oidc = (lines: string) => `${HEAD}[[plugins]]\nname = "openid-connect"\n[plugins.config]\n${lines}\n`;
interface Scenario {
  readonly id: string;
  readonly toml: string;
  readonly perRound: number;
  /** Headers of the i-th request. */
  headers(i: number): Record<string, string>;
  /** Called before a round of `n` requests (DPoP signs its proofs). */
  before?(n: number): Promise<void>;
}
const base = wrkHeaders;
const basic = `Basic ${btoa("bench-client:bench-secret")}`;
let dpopProofs: string[] = [];
const all: Scenario[] = [
  { id: "3", toml: HEAD, perRound: 20_000, headers: () => base },
  // The plain route with scenario 5's Authorization header: what carrying ~1 KiB more costs by itself.
  { id: "3t", toml: HEAD, perRound: 20_000, headers: () => ({ ...base, authorization: `Bearer ${oneToken}` }) },
  {
    id: "4",
    toml: oidc(`issuer = "${idp.issuer}"\nauth_methods = ["client_credentials"]\nclient_credentials_param_type = ["header"]`),
    perRound: 20_000,
    headers: () => ({ ...base, authorization: basic }),
  },
  {
    id: "5",
    toml: oidc(`issuer = "${rsIssuer}"\nauth_methods = ["bearer"]\naudience_required = ["${AUDIENCE}"]`),
    perRound: 20_000,
    headers: () => ({ ...base, authorization: `Bearer ${oneToken}` }),
  },
  {
    id: "5k",
    toml: oidc(`issuer = "${rsIssuer}"\nauth_methods = ["bearer"]\naudience_required = ["${AUDIENCE}"]`),
    perRound: 20_000,
    headers: (i) => ({ ...base, authorization: `Bearer ${thousand[i % 1000]}` }),
  },
  {
    id: "6",
    toml: oidc(`issuer = "${rsIssuer}"\nauth_methods = ["bearer"]\nproof_of_possession_dpop = "strict"`),
    perRound: 3_000,
    headers: (i) => ({ ...base, authorization: `DPoP ${dpopToken}`, dpop: dpopProofs[i]! }),
    async before(n) {
      dpopProofs = await proofs(n);
    },
  },
];
const scenarios = all.filter((s) => !only || only.has(s.id));

// ---- timed rounds (the harness: bench/lib/micro-harness.ts)
async function round(handler: Handler, s: Scenario, n: number): Promise<number> {
  await s.before?.(n);
  const requests: Request[] = [];
  for (let i = 0; i < n; i++) requests.push(new Request("http://127.0.0.1:8000/bench", { headers: s.headers(i) }));
  return cpuPerRequest(n, (i) =>
    Promise.resolve(handler(requests[i]!)).then((r) => {
      if (r.status !== 200) throw new Error(`scenario ${s.id}: ${r.status} ${r.headers.get("www-authenticate")}`);
      return r.arrayBuffer();
    }),
  );
}

const handlers: { dir: string; s: Scenario; h: Handler }[] = [];
for (const s of scenarios) for (const dir of args.dirs) handlers.push({ dir, s, h: await loadApp(dir, s.toml) });
const n = (s: Scenario) => (profile ? s.perRound * 10 : args.requests(s.perRound));
const medians = await interleavedMedians(
  handlers,
  rounds,
  (x) => round(x.h, x.s, Math.min(n(x.s), 2000)), // warm-up, fills the caches
  (x) => round(x.h, x.s, n(x.s)),
);
const plain = new Map(handlers.flatMap((x, i) => (x.s.id === "3" ? [[x.dir, medians[i]!] as const] : [])));
for (const [i, x] of handlers.entries()) {
  const m = medians[i]!;
  const p = plain.get(x.dir);
  console.log(
    tableRow(`${x.s.id.padEnd(3)} ${x.dir.padEnd(28)}`, m, p !== undefined && x.s.id !== "3" ? `  (+${(m - p).toFixed(2)} over plain)` : ""),
  );
}
rsServer.stop(true);
await idp.stop();
process.exit(0);
