/**
 * `[cluster] strategy = "redis"`: what a gateway shares with the others of its fleet. Built once
 * per process (a `[cluster]` change needs a restart) and handed to plugins as
 * `PluginContext.cluster`; construction sites ask it for their shared layer and get `undefined`
 * (or their local store back) when the item is not shared.
 *
 *   const shared = await ctx.cluster?.tokenLayer<CachedToken>("tokens", "client_credentials:v2", config.cache_tokens_salt);
 *   new TokenCache(policy, { shared });
 *   const replay = ctx.cluster?.replayStore(localStore) ?? localStore;
 *   const keys = (await cluster?.keyStore(runtime, config.keys)) ?? (await openKeyStore(...));
 */
import type { KeyStore } from "../keys/types.ts";
import type { KeysConfig } from "../config/keys.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { ReplayStore } from "../oidc/resource/replay-store.ts";
import type { SharedTokenLayer } from "../oidc/client/token-cache.ts";
import type { Runtime } from "../runtime/types.ts";
import { createClusterHealth, type ClusterHealth } from "./health.ts";
import { RedisKeyStore } from "./key-store.ts";
import { connectRedis, redisAddress, type RedisLink } from "./redis.ts";
import { createRedisReplayStore } from "./replay-store.ts";
import type { ClusterConfig, ClusterItem } from "../config/cluster.ts";
import { createSealer } from "./seal.ts";
import { createSharedTokenStore } from "./token-store.ts";

export type { ClusterConfig } from "../config/cluster.ts";

export interface Cluster {
  readonly config: ClusterConfig;
  readonly health: ClusterHealth;
  readonly link: RedisLink;
  /** `key_prefix`. */
  readonly prefix: string;
  shares(item: ClusterItem): boolean;
  /**
   * The fleet layer behind one token cache. `cache` names it and the format of its values
   * (`client_credentials:v2`, ...), so caches that happen to compute equal keys, or nodes that
   * store another format, never meet; `salt` is its `cache_tokens_salt`
   * (config checking requires it when tokens are shared). Undefined: not shared.
   */
  tokenLayer<T>(item: "tokens" | "introspection", cache: string, salt: string | undefined): Promise<SharedTokenLayer<T> | undefined>;
  /** The fleet's replay store in front of `local`, or `local` when `dpop_replay` is not shared. */
  replayStore(local: ReplayStore): ReplayStore;
  /**
   * The fleet's signing keys, opened (`[keys]` gives the grace period and the local copy's
   * file), or undefined when `keys` is not shared: the caller opens the file store then.
   */
  keyStore(runtime: Pick<Runtime, "readTextFile" | "writeFileAtomic">, keys: KeysConfig): Promise<KeyStore | undefined>;
  /** For `/status/ready`: why the node runs on local caches only (it stays ready). */
  degradedReason(): string | undefined;
  close(): Promise<void>;
}

export interface ClusterDeps {
  readonly log: Logger;
  readonly metrics?: Metrics | undefined;
  /** PEM CAs of `[server] trusted_certificates`, for `rediss://`. */
  readonly trustedCertificates?: readonly string[];
}

/** Connects (without waiting: see `link.ready`) and returns the fleet's shared stores. */
export function createCluster(config: ClusterConfig, deps: ClusterDeps): Cluster | undefined {
  if (config.strategy !== "redis" || config.redis_url === undefined) return undefined;
  const address = redisAddress(config.redis_url);
  const health = createClusterHealth(deps.log, deps.metrics, address);
  const link = connectRedis({
    url: config.redis_url,
    username: config.username,
    password: config.password,
    connectTimeout: config.connect_timeout,
    commandTimeout: config.command_timeout,
    ...(deps.trustedCertificates ? { trustedCertificates: deps.trustedCertificates } : {}),
    health,
  });
  const prefix = config.key_prefix;
  const shares = (item: ClusterItem) => config.items.includes(item);

  return {
    config,
    health,
    link,
    prefix,
    shares,
    async tokenLayer<T>(item: "tokens" | "introspection", cache: string, salt: string | undefined) {
      if (!shares(item) || salt === undefined) return undefined;
      const namespace = `${prefix}${item}:${cache}:`;
      const sealer = await createSealer(salt, `${item} ${cache}`);
      return createSharedTokenStore<T>({ link, sealer, health, namespace, item, lockTimeout: config.lock_timeout });
    },
    replayStore(local) {
      if (!shares("dpop_replay")) return local;
      return createRedisReplayStore({ link, health, namespace: `${prefix}dpop:`, local, fallback: config.dpop_replay_fallback });
    },
    async keyStore(runtime, keys) {
      if (!shares("keys") || config.keys_secret === undefined) return undefined;
      const store = new RedisKeyStore({
        link,
        health,
        sealer: await createSealer(config.keys_secret, "keys"),
        log: deps.log.child({ component: "keys" }),
        prefix,
        rotationGrace: keys.rotation_grace,
        rotationSigningDelay: keys.rotation_signing_delay,
        file: keys.jwks_file,
        runtime,
      });
      await store.open();
      return store;
    },
    degradedReason() {
      if (health.available) return undefined;
      const since = health.since === undefined ? "" : ` for ${Math.round((Date.now() - health.since) / 1000)} s`;
      return `redis ${address} unreachable${since} (${health.reason ?? "unknown"}): serving from local caches`;
    },
    close: () => link.close(),
  };
}
