/**
 * The fleet's token cache, behind each gateway's local one (`SharedTokenLayer`): asked only on a
 * local miss or refresh, so the hot path never leaves the process.
 *
 * - Keys are the local cache's keys (HMAC under `cache_tokens_salt`); values are sealed with a key
 *   derived from the same salt (seal.ts). Expiry is Redis's own TTL, computed like the local one.
 * - Single flight across the fleet: the gateway that misses first takes a short lock
 *   (`SET NX PX lock_timeout`) and asks the IdP; the others poll for its result, and fetch
 *   themselves when the lock goes away without one (the IdP refused or failed) or `lock_timeout`
 *   passes.
 * - Refresh ahead across the fleet: an entry past 80 % of its TTL is refreshed by whichever
 *   gateway takes the lock; the others keep using it meanwhile.
 * - Redis unreachable: `fetch` is called directly (the local cache's single flight still holds),
 *   and the fetched token is not stored. Rejections (wrong credentials) are never shared.
 */
import { AuthError } from "../errors.ts";
import { cacheTtl, REFRESH_AHEAD, type Fresh, type SharedTokenLayer, type TokenCachePolicy } from "../oidc/client/token-cache.ts";
import type { ClusterHealth } from "./health.ts";
import type { RedisLink } from "./redis.ts";
import type { Sealer } from "./seal.ts";

export interface SharedTokenStoreOptions {
  readonly link: RedisLink;
  readonly sealer: Sealer;
  readonly health: ClusterHealth;
  /** `key_prefix` + what is cached, e.g. `oidc-gateway:tokens:client_credentials:v2:`. */
  readonly namespace: string;
  /** Metric label: `tokens` or `introspection`. */
  readonly item: string;
  /** `lock_timeout` (ms). */
  readonly lockTimeout: number;
  readonly now?: () => number;
}

/** What is stored: the value and the times every node uses for it. */
interface SharedEntry<T> {
  readonly v: T;
  /** Token expiry (epoch ms), when known. */
  readonly e: number | null;
  /** Fresh until (epoch ms) = the Redis TTL. */
  readonly f: number;
  /** Refresh after (epoch ms). */
  readonly r: number;
}

const POLL_FIRST_MS = 5;
const POLL_MAX_MS = 50;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

export function createSharedTokenStore<T>(options: SharedTokenStoreOptions): SharedTokenLayer<T> {
  const { link, sealer, health, namespace, item, lockTimeout } = options;
  const now = options.now ?? Date.now;

  const read = async (redisKey: string, data: Uint8Array | null): Promise<SharedEntry<T> | undefined> => {
    if (!data) return undefined;
    const text = await sealer.open(data, redisKey);
    if (text === undefined) return undefined; // another salt, or tampered: as if absent
    try {
      return JSON.parse(text) as SharedEntry<T>;
    } catch {
      return undefined;
    }
  };

  /** The entry as the local cache takes it: a value with no expiry of its own expires with the shared entry. */
  const fresh = (entry: SharedEntry<T>): Fresh<T> => ({ value: entry.v, expiresAt: entry.e ?? entry.f, shared: true });

  const store = async (redisKey: string, value: Fresh<T>, policy: TokenCachePolicy): Promise<void> => {
    const at = now();
    const lifetime = value.expiresAt === undefined ? undefined : (value.expiresAt - at) / 1000;
    const ttl = cacheTtl(policy, lifetime) * 1000;
    if (!(ttl >= 1)) return;
    const entry: SharedEntry<T> = { v: value.value, e: value.expiresAt ?? null, f: at + ttl, r: at + ttl * REFRESH_AHEAD };
    try {
      await link.set(redisKey, await sealer.seal(JSON.stringify(entry), redisKey), ttl);
      health.event(item, "stored");
    } catch {
      health.event(item, "error");
    }
  };

  return {
    async load(key, fetch, policy) {
      if (!link.available) return fetch();
      const redisKey = namespace + key;
      const lockKey = `${namespace}lock:${key}`;
      let entry: SharedEntry<T> | undefined;
      try {
        entry = await read(redisKey, await link.get(redisKey));
      } catch {
        health.event(item, "error");
        return fetch();
      }
      if (entry && now() < entry.r) {
        health.event(item, "hit");
        return fresh(entry);
      }

      const owner = randomToken();
      let locked: boolean;
      try {
        locked = await link.set(lockKey, owner, lockTimeout, { nx: true });
      } catch {
        health.event(item, "error");
        return entry && now() < entry.f ? fresh(entry) : fetch();
      }

      if (locked) {
        try {
          if (!entry) {
            // Someone may have stored and unlocked between our read and our lock.
            const again = await read(redisKey, await link.get(redisKey).catch(() => null));
            if (again && now() < again.r) {
              health.event(item, "hit");
              return fresh(again);
            }
          }
          health.event(item, "miss");
          let value: Fresh<T>;
          try {
            value = await fetch();
          } catch (error) {
            // The IdP failed a refresh: the fleet's entry is still valid until its TTL.
            if (entry && now() < entry.f && !(error instanceof AuthError)) return fresh(entry);
            throw error;
          }
          await store(redisKey, value, policy);
          return value;
        } finally {
          link.deleteIfEquals(lockKey, owner).catch(() => {});
        }
      }

      // Another gateway is fetching: a still-fresh entry is good meanwhile; else wait for its result.
      if (entry && now() < entry.f) {
        health.event(item, "hit");
        return fresh(entry);
      }
      health.event(item, "lock_wait");
      const deadline = now() + lockTimeout;
      let pause = POLL_FIRST_MS;
      while (now() < deadline) {
        await sleep(Math.min(pause, Math.max(1, deadline - now())));
        pause = Math.min(pause * 2, POLL_MAX_MS);
        let value: Uint8Array | null;
        let lock: Uint8Array | null;
        try {
          [value = null, lock = null] = await link.mget([redisKey, lockKey]);
        } catch {
          health.event(item, "error");
          break;
        }
        const found = await read(redisKey, value);
        if (found && now() < found.f) {
          health.event(item, "hit");
          return fresh(found);
        }
        if (!lock) break; // the fetcher gave up (refused or failed): ask ourselves
      }
      if (now() >= deadline) health.event(item, "lock_timeout");
      const value = await fetch();
      await store(redisKey, value, policy);
      return value;
    },
  };
}
