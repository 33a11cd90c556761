/**
 * What `make bench` measures, as data. A gateway scenario runs when `oidc-gateway check` accepts
 * its config (bench/configs/); until then it is listed as "not available yet" with check's reason.
 * A peer (HAProxy, Apache) runs when its Debian package is installed or can be (bench/lib/tools.ts).
 * Adding a scenario is an entry in `scenarios` (one defined in another file, e.g. bench/routes.ts,
 * is imported and listed there): a gateway config (or `entry`, a .ts run by Bun with that config),
 * or `start` for any other server; and, when callers send something special, a `prepare` that
 * returns headers or a wrk script.
 */
import { join } from "node:path";
import { SERVICE_SECRET, type IdpProcess } from "../test/support/idp-process.ts";
import { dpopClient } from "./lib/dpop-load.ts";
import { apacheConfig, haproxyConfig, startApache, startHaproxy, type JwtCheck } from "./lib/peers.ts";
import type { Started } from "./lib/proc.ts";
import { AUDIENCE, KID, type StaticIssuer } from "./lib/static-issuer.ts";
import type { Tools } from "./lib/tools.ts";

export const BENCH_DIR = import.meta.dir;

/** What wrk sends, beyond `GET /`. */
export interface LoadTarget {
  readonly headers?: Readonly<Record<string, string>>;
  readonly script?: string;
  readonly scriptArgs?: readonly string[];
}

export interface PrepareContext {
  readonly idp: IdpProcess;
  /** The RS256 issuer of the bearer scenarios (when a wanted scenario has `staticIssuer`). */
  readonly issuer: StaticIssuer;
  /** The gateway's proxy URL for this scenario. */
  readonly proxyUrl: string;
  readonly dir: string;
  readonly durationSeconds: number;
}

export interface Prepared extends LoadTarget {
  /** Requests that must be refused (401 or 403) before the scenario is measured: it really verifies. */
  readonly mustReject?: readonly { readonly label: string; readonly headers: Readonly<Record<string, string>> }[];
  /** Called before every measured run (and the warm-up, round 0): e.g. fresh DPoP proofs. */
  beforeRun?(round: number): Promise<LoadTarget>;
}

export interface Target {
  /** Requests/s at least this share of scenario `of`'s (default "2", nginx). */
  readonly minRatio?: number;
  /** p99 latency at most this multiple of scenario `of`'s. */
  readonly maxP99Ratio?: number;
  readonly of?: string;
}

/** What a `start` gets: a free port is its own to pick (bench/lib/proc.ts freePort). */
export interface StartContext {
  readonly tools: Tools;
  readonly dir: string;
  readonly upstreamPort: number;
  readonly port: number;
  readonly issuer: StaticIssuer | undefined;
  readonly cpus: string | undefined;
}

export interface ScenarioDef {
  readonly id: string;
  readonly title: string;
  readonly kind: "direct" | "nginx" | "gateway" | "peer";
  /** Gateway config template in bench/configs/. */
  readonly config?: string;
  /** Run this .ts file (relative to the repository) under Bun with the config, instead of the gateway. */
  readonly entry?: string;
  /** kind "peer": starts the server on `ctx.port`; the bench waits for it to answer. */
  start?(ctx: StartContext): Started;
  /** kind "peer": the Debian tool it needs, installed when missing. */
  readonly needs?: "haproxy" | "apache";
  /** Needs the run's RS256 issuer (bench/lib/static-issuer.ts). */
  readonly staticIssuer?: boolean;
  /** Needs the development IdP (test/support/idp). */
  readonly idp?: boolean;
  /** Needs a redis-server (`[cluster] strategy = "redis"`, `{{redis_url}}`). */
  readonly redis?: boolean;
  /** Run the gateway from source under Deno instead of the compiled (Bun) binary. */
  readonly runtime?: "deno";
  prepare?(ctx: PrepareContext): Promise<Prepared>;
  readonly targets?: readonly Target[];
}

export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;

const jwtCheck = (issuer: StaticIssuer | undefined): JwtCheck => {
  if (!issuer) throw new Error("no static issuer started");
  return { issuer: issuer.issuer, audience: AUDIENCE, publicKeyFile: issuer.publicKeyFile, certFile: issuer.certFile, kid: KID };
};

/** One valid token on every request; a forged, an expired and a missing token must be refused. */
async function oneToken({ issuer }: PrepareContext): Promise<Prepared> {
  const [token] = await issuer.tokens(1);
  const [expired] = await issuer.tokens(1, -60);
  return {
    headers: { authorization: `Bearer ${token}` },
    mustReject: [
      { label: "a forged signature", headers: { authorization: `Bearer ${await issuer.forged()}` } },
      { label: "an expired token", headers: { authorization: `Bearer ${expired}` } },
      { label: "no token", headers: {} },
    ],
  };
}

/** 1 000 distinct valid tokens, round-robin (bench/lua/tokens.lua). */
async function thousandTokens(ctx: PrepareContext): Promise<Prepared> {
  const one = await oneToken(ctx);
  return { ...one, script: join(BENCH_DIR, "lua/tokens.lua"), scriptArgs: [await ctx.issuer.tokensFile(1000)] };
}

const clientCredentials = async (): Promise<Prepared> => ({ headers: { authorization: basic("service", SERVICE_SECRET) } });

/**
 * Ids: 1–8 the gateway's scenarios as before; a letter after the number is a variant or a peer
 * measured next to it: h HAProxy, a Apache, f/s the runtime's floor proxies (fetch, socket),
 * k 1 000 tokens, r Redis, d Deno. The targets are issue 12's.
 */
export const scenarios: readonly ScenarioDef[] = [
  { id: "1", title: "direct upstream (the ceiling)", kind: "direct" },
  { id: "2", title: "nginx, 1 worker, reverse proxy with upstream keepalive (the reference)", kind: "nginx" },
  {
    id: "2h",
    title: "HAProxy 2.6, 1 thread, plain reverse proxy",
    kind: "peer",
    needs: "haproxy",
    start: (c) => startHaproxy(c.tools.haproxy!, c.dir, "haproxy-plain", haproxyConfig(c.port, c.upstreamPort), c.cpus),
  },
  {
    id: "3",
    title: "gateway, plain route, no plugin",
    kind: "gateway",
    config: "plain.toml",
    targets: [{ minRatio: 0.9, of: "3s" }, { minRatio: 0.6 }, { maxP99Ratio: 2 }],
  },
  {
    id: "3n",
    title: "gateway, plain route, no plugin, strict_listener (node:http)",
    kind: "gateway",
    config: "plain-strict.toml",
  },
  {
    id: "3f",
    title: "floor: Bun.serve + fetch() proxy, no logic (bench/lib/bare-proxy.ts)",
    kind: "gateway",
    config: "plain.toml",
    entry: "bench/lib/bare-proxy.ts",
  },
  {
    id: "3s",
    title: "floor: Bun.serve + pooled Bun.connect HTTP/1.1 proxy, no logic (bench/lib/socket-proxy.ts)",
    kind: "gateway",
    config: "plain.toml",
    entry: "bench/lib/socket-proxy.ts",
  },
  {
    id: "4",
    title: "gateway, openid-connect client credentials, token cached (Basic on every request)",
    kind: "gateway",
    config: "client-credentials.toml",
    idp: true,
    targets: [{ minRatio: 0.9, of: "3" }, { maxP99Ratio: 2 }],
    prepare: clientCredentials,
  },
  {
    id: "4r",
    title: 'gateway, scenario 4 with [cluster] strategy = "redis" (local token cache in front of Redis)',
    kind: "gateway",
    config: "client-credentials-redis.toml",
    idp: true,
    redis: true,
    prepare: clientCredentials,
  },
  {
    id: "4c",
    title: "gateway, scenario 4 with a consumer (consumer_claim), acl and rate-limiting (local policy)",
    kind: "gateway",
    config: "client-credentials-callers.toml",
    idp: true,
    targets: [{ minRatio: 0.9, of: "4" }],
    prepare: clientCredentials,
  },
  {
    id: "4cr",
    title: "gateway, scenario 4c with rate-limiting counted in the [cluster] Redis",
    kind: "gateway",
    config: "client-credentials-callers-redis.toml",
    idp: true,
    redis: true,
    prepare: clientCredentials,
  },
  {
    id: "5",
    title: "gateway, bearer JWT RS256 (the same token on every request)",
    kind: "gateway",
    config: "bearer.toml",
    staticIssuer: true,
    targets: [{ minRatio: 1.0, of: "5h" }, { maxP99Ratio: 2 }],
    prepare: oneToken,
  },
  {
    id: "5p",
    title: "gateway, plain route, scenario 5's Authorization header forwarded unverified (what carrying the 1 KiB token costs)",
    kind: "gateway",
    config: "plain.toml",
    staticIssuer: true,
    prepare: async ({ issuer }) => ({ headers: { authorization: `Bearer ${(await issuer.tokens(1))[0]}` } }),
  },
  {
    id: "5h",
    title: "HAProxy 2.6 jwt_verify, RS256 static key, iss/aud/exp checked (the same token)",
    kind: "peer",
    needs: "haproxy",
    staticIssuer: true,
    start: (c) => startHaproxy(c.tools.haproxy!, c.dir, "haproxy-jwt", haproxyConfig(c.port, c.upstreamPort, jwtCheck(c.issuer)), c.cpus),
    prepare: oneToken,
  },
  {
    id: "5a",
    title: "Apache 2.4 + mod_auth_openidc, AuthType oauth20, static certificate (the same token)",
    kind: "peer",
    needs: "apache",
    staticIssuer: true,
    start: (c) =>
      startApache(
        c.tools.apache!,
        c.dir,
        "apache-oauth20",
        apacheConfig(c.dir, "apache-oauth20", c.port, c.upstreamPort, jwtCheck(c.issuer)),
        c.cpus,
      ),
    prepare: oneToken,
  },
  {
    id: "5k",
    title: "gateway, bearer JWT RS256, 1 000 distinct tokens round-robin",
    kind: "gateway",
    config: "bearer.toml",
    staticIssuer: true,
    targets: [{ minRatio: 0.8, of: "5kh" }],
    prepare: thousandTokens,
  },
  {
    id: "5kh",
    title: "HAProxy 2.6 jwt_verify, 1 000 distinct tokens round-robin",
    kind: "peer",
    needs: "haproxy",
    staticIssuer: true,
    start: (c) => startHaproxy(c.tools.haproxy!, c.dir, "haproxy-jwt-1000", haproxyConfig(c.port, c.upstreamPort, jwtCheck(c.issuer)), c.cpus),
    prepare: thousandTokens,
  },
  {
    id: "6",
    title: "gateway, bearer + DPoP (a fresh proof on every request)",
    kind: "gateway",
    config: "dpop.toml",
    idp: true,
    targets: [{ minRatio: 0.5, of: "5" }],
    async prepare({ idp, proxyUrl, dir, durationSeconds }) {
      const client = await dpopClient(idp.tokenEndpoint, "client-dpop-auth", "client-dpop-auth-secret");
      // Enough proofs for 15 000 requests/s (signing takes ~40 µs each); the wrk script stops
      // early rather than replay one, and wrk reports the rate over the time it ran.
      const count = Math.min(200_000, 15_000 * durationSeconds);
      return {
        headers: { authorization: `DPoP ${client.accessToken}` },
        async beforeRun(round) {
          const file = await client.writeProofs(join(dir, `dpop-proofs-${round}.txt`), `${proxyUrl}/`, round === 0 ? 20_000 : count);
          return { script: join(BENCH_DIR, "lua/dpop.lua"), scriptArgs: [file] };
        },
      };
    },
  },
  { id: "7", title: "gateway, upstream-oauth (cached token injected)", kind: "gateway", config: "upstream-oauth.toml", idp: true },
  // The Deno column: the same source started with `deno run`, for the plain and cached paths.
  { id: "3d", title: "gateway under Deno, plain route, no plugin", kind: "gateway", config: "plain.toml", runtime: "deno" },
  {
    id: "4d",
    title: "gateway under Deno, openid-connect client credentials, token cached",
    kind: "gateway",
    config: "client-credentials.toml",
    idp: true,
    runtime: "deno",
    prepare: clientCredentials,
  },
];

/** Scenario 8 and the other one-off measurements, each gated by its config like the scenarios. */
export const extras = {
  cold: {
    id: "8",
    title: "cold path: distinct clients against the local IdP, then concurrent requests for one cold client",
    config: "client-credentials.toml",
  },
  tokens: { title: "RSS with 100 000 cached tokens", config: "client-credentials.toml", count: 100_000 },
  workers: { title: "workers: requests/s for 1 and 2 gateway workers against nginx with 1 and 2 workers", config: "workers.toml" },
  startup: { title: "startup of dist/oidc-gateway to the first 200 from /status", config: "plain.toml", runs: 7 },
} as const;
