/**
 * `[cluster]`: several gateways behind one load balancer share what must be shared through
 * Redis (or Valkey, same protocol). Off by default: everything stays in process memory.
 */
import { z } from "zod";
import { millis, table } from "./fields.ts";

/** What can be shared. `introspection` is for the introspection cache of the plugins that have one. */
const CLUSTER_ITEMS = ["tokens", "dpop_replay", "keys", "introspection"] as const;
export type ClusterItem = (typeof CLUSTER_ITEMS)[number];

export const clusterSchema = () =>
  table({
    strategy: z
      .enum(["off", "redis"])
      .default("off")
      .describe(
        '"off": every cache lives in this process; "redis": the caches of `items` are shared with the other gateways through Redis or Valkey.',
      )
      .meta({ kong: "the plugins' `cluster_cache_strategy`" }),
    redis_url: z
      .url({ protocol: /^rediss?$/, error: (issue) => (issue.input === undefined ? undefined : "expected a redis:// or rediss:// URL") })
      .optional()
      .describe(
        "`redis://host:port/db`, or `rediss://` for TLS (verified against the system roots and `[server] trusted_certificates`); user and password may be in the URL.",
      ),
    username: z.string().min(1).optional().describe("Redis ACL user (`AUTH username password`); overrides the URL's."),
    password: z.string().min(1).optional().describe("Redis password; overrides the URL's."),
    items: z
      .array(z.enum(CLUSTER_ITEMS))
      .default([...CLUSTER_ITEMS])
      .describe(
        "What is shared: `tokens` (token cache), `dpop_replay` (DPoP proofs seen), `keys` (the gateway's signing keys), `introspection` (introspection results).",
      ),
    key_prefix: z
      .string()
      .regex(/^[\w.:-]{0,64}$/, "expected at most 64 letters, digits and _ . : -")
      .default("oidc-gateway:")
      .describe("Prefix of every Redis key and channel, so several fleets can share one Redis."),
    connect_timeout: millis()
      .min(1, "expected at least 1 ms")
      .default(2000)
      .describe("Time to connect to Redis (ms); the gateway starts without it and keeps trying."),
    command_timeout: millis()
      .min(1, "expected at least 1 ms")
      .default(1000)
      .describe("Time to wait for one Redis reply (ms); past it Redis counts as unreachable and local caches carry on."),
    lock_timeout: millis(60_000)
      .min(10, "expected at least 10 ms")
      .default(5000)
      .describe(
        "Fleet single flight: how long one gateway holds the lock for a token fetch, and how long the others wait for its result before fetching themselves (ms).",
      ),
    keys_secret: z
      .string()
      .min(32, "expected at least 32 characters (e.g. `openssl rand -base64 32`)")
      .optional()
      .describe("Secret the fleet's signing keys are encrypted with in Redis (with `keys` in `items`); equal on every node."),
    dpop_replay_fallback: z
      .enum(["local", "refuse"])
      .default("local")
      .describe(
        'While Redis is unreachable, DPoP replays are checked against this gateway\'s own memory ("local"), or DPoP requests are refused with 503 ("refuse"). See docs/cluster.md.',
      ),
  }).superRefine((c, ctx) => {
    if (c.strategy === "redis" && c.redis_url === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["redis_url"],
        message: "missing required key: expected a redis:// or rediss:// URL because 'strategy' is \"redis\"",
      });
    }
    if (c.strategy === "redis" && c.items.includes("keys") && c.keys_secret === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["keys_secret"],
        message:
          "missing required key: the signing keys are shared through redis ('items' has \"keys\"), encrypted with 'keys_secret', which must be equal on every node; or leave \"keys\" out of 'items'",
      });
    }
  });

export type ClusterConfig = z.output<ReturnType<typeof clusterSchema>>;

/** Does `[cluster]` share the caches keyed by `cache_tokens_salt`? */
const sharesTokens = (cluster: ClusterConfig): boolean =>
  cluster.strategy === "redis" && (cluster.items.includes("tokens") || cluster.items.includes("introspection"));

interface IssueSink {
  addIssue(issue: { code: "custom"; path: PropertyKey[]; message: string }): void;
}

/**
 * Shared token entries are keyed by an HMAC under `cache_tokens_salt` and encrypted with a key
 * derived from it: without a salt every process picks a random one, and nothing would ever be
 * shared. A plugin with a token cache (`cache_tokens`) must then name the salt; equal on every
 * node is the operator's part (different salts share nothing, and never mix).
 */
export function checkSharedSalts(config: { cluster: ClusterConfig; plugins: readonly { config: unknown }[] }, ctx: IssueSink): void {
  if (!sharesTokens(config.cluster)) return;
  config.plugins.forEach((p, i) => {
    const c = p.config as Record<string, unknown> | undefined;
    if (!c || typeof c !== "object" || !("cache_tokens" in c) || c.cache_tokens === false || c.cache_tokens_salt !== undefined) return;
    ctx.addIssue({
      code: "custom",
      path: ["plugins", i, "config", "cache_tokens_salt"],
      message: "missing required key: [cluster] shares tokens through Redis, so 'cache_tokens_salt' must be set, and equal on every node",
    });
  });
}
