/**
 * DPoP replay detection for the fleet: a proof accepted by one gateway is refused by all.
 * `SET <prefix>dpop:<hash(jkt, jti)> 1 NX PX <remaining lifetime>`: the first gateway to record
 * the key wins, and Redis forgets it when the proof could no longer be accepted anyway.
 *
 * The gateway's own memory store is asked first and always written: a replay to the same
 * gateway costs no network call, and a replay of a proof this gateway saw before Redis went
 * away is still refused while Redis is down.
 *
 * Redis unreachable (`dpop_replay_fallback`):
 * - "local" (default): the check goes on against this gateway's memory only. Every other DPoP
 *   check still applies (signature, `htm`/`htu`, `iat` window, `ath`, key binding, nonce); what
 *   is lost is refusing a proof first used at *another* gateway, within its lifetime.
 * - "refuse": DPoP requests are answered 503 until Redis is back.
 */
import { ReplayStoreUnavailableError } from "../errors.ts";
import type { ReplayStore } from "../oidc/resource/replay-store.ts";
import type { ClusterHealth } from "./health.ts";
import type { RedisLink } from "./redis.ts";

export interface RedisReplayStoreOptions {
  readonly link: RedisLink;
  readonly health: ClusterHealth;
  /** `key_prefix` + `dpop:`. */
  readonly namespace: string;
  /** This gateway's own store (checked first, always written). */
  readonly local: ReplayStore;
  readonly fallback: "local" | "refuse";
}

export function createRedisReplayStore(options: RedisReplayStoreOptions): ReplayStore {
  const { link, health, namespace, local, fallback } = options;
  const degraded = (): boolean => {
    health.event("dpop_replay", "replay_local");
    if (fallback === "refuse") throw new ReplayStoreUnavailableError("redis is unreachable and [cluster] 'dpop_replay_fallback' is \"refuse\"");
    return true;
  };
  return {
    async checkAndRecord(key, expiresAt, now = Date.now()) {
      if (!(await local.checkAndRecord(key, expiresAt, now))) return false;
      if (!link.available) return degraded();
      let fresh: boolean;
      try {
        fresh = await link.set(namespace + key, "1", expiresAt - now, { nx: true });
      } catch {
        return degraded();
      }
      if (!fresh) health.event("dpop_replay", "replay_rejected");
      return fresh;
    },
  };
}
