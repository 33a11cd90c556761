/**
 * What `make bench` measures, as data. A gateway scenario runs when `oidc-gateway check` accepts
 * its config (bench/configs/); until then it is listed as "not available yet" with check's reason.
 * Adding a scenario is a config, an entry here and, when callers send something special, a
 * `prepare` that returns headers or a wrk script.
 */
import { join } from "node:path";
import { SERVICE_SECRET, type IdpProcess } from "../test/support/idp-process.ts";
import { dpopClient } from "./lib/dpop-load.ts";

export const BENCH_DIR = import.meta.dir;

/** What wrk sends, beyond `GET /`. */
export interface LoadTarget {
  readonly headers?: Readonly<Record<string, string>>;
  readonly script?: string;
  readonly scriptArgs?: readonly string[];
}

export interface PrepareContext {
  readonly idp: IdpProcess;
  /** The gateway's proxy URL for this scenario. */
  readonly proxyUrl: string;
  readonly dir: string;
  readonly durationSeconds: number;
}

export interface Prepared extends LoadTarget {
  /** Called before every measured run (and the warm-up, round 0): e.g. fresh DPoP proofs. */
  beforeRun?(round: number): Promise<LoadTarget>;
}

export interface Target {
  /** Requests/s at least this share of scenario 2's. */
  readonly minRatio?: number;
  /** p99 latency at most this multiple of scenario 2's. */
  readonly maxP99Ratio?: number;
}

export interface ScenarioDef {
  readonly id: string;
  readonly title: string;
  readonly kind: "direct" | "nginx" | "gateway";
  /** Gateway config template in bench/configs/. */
  readonly config?: string;
  /** Needs the development IdP (test/support/idp). */
  readonly idp?: boolean;
  /** Needs a redis-server (`[cluster] strategy = "redis"`, `{{redis_url}}`). */
  readonly redis?: boolean;
  /** Run the gateway from source under Deno instead of the compiled (Bun) binary. */
  readonly runtime?: "deno";
  prepare?(ctx: PrepareContext): Promise<Prepared>;
  readonly target?: Target;
}

export const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;

export const scenarios: readonly ScenarioDef[] = [
  { id: "1", title: "direct upstream (the ceiling)", kind: "direct" },
  { id: "2", title: "nginx, 1 worker, reverse proxy with upstream keepalive (the reference)", kind: "nginx" },
  { id: "3", title: "gateway, plain route, no plugin", kind: "gateway", config: "plain.toml", target: { minRatio: 0.9 } },
  {
    id: "4",
    title: "gateway, openid-connect client credentials, token cached (Basic on every request)",
    kind: "gateway",
    config: "client-credentials.toml",
    idp: true,
    target: { minRatio: 0.85, maxP99Ratio: 1.5 },
    prepare: async () => ({ headers: { authorization: basic("service", SERVICE_SECRET) } }),
  },
  {
    id: "4r",
    title: "gateway, scenario 4 with [cluster] strategy = \"redis\" (local token cache in front of Redis)",
    kind: "gateway",
    config: "client-credentials-redis.toml",
    idp: true,
    redis: true,
    target: { minRatio: 0.85, maxP99Ratio: 1.5 },
    prepare: async () => ({ headers: { authorization: basic("service", SERVICE_SECRET) } }),
  },
  {
    id: "5",
    title: "gateway, bearer JWT (the same token on every request)",
    kind: "gateway",
    config: "bearer.toml",
    idp: true,
    target: { minRatio: 0.8 },
    prepare: async ({ idp }) => ({ headers: { authorization: `Bearer ${(await idp.token("service", SERVICE_SECRET)).access_token}` } }),
  },
  {
    id: "6",
    title: "gateway, bearer + DPoP (a fresh proof on every request)",
    kind: "gateway",
    config: "dpop.toml",
    idp: true,
    target: { minRatio: 0.5 },
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
    prepare: async () => ({ headers: { authorization: basic("service", SERVICE_SECRET) } }),
  },
];

/** Scenario 8 and the other one-off measurements, each gated by its config like the scenarios. */
export const extras = {
  cold: { id: "8", title: "cold path: distinct clients against the local IdP, then concurrent requests for one cold client", config: "client-credentials.toml" },
  tokens: { title: "RSS with 100 000 cached tokens", config: "client-credentials.toml", count: 100_000 },
  workers: { title: "workers: requests/s for 1 and 2 gateway workers against nginx with 1 and 2 workers", config: "workers.toml" },
  startup: { title: "startup of dist/oidc-gateway to the first 200 from /status", config: "plain.toml", runs: 7 },
} as const;
