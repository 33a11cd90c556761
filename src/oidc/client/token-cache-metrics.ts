/**
 * How a token cache shows in the metrics, the same for every cache (openid-connect's
 * client_credentials, password and introspection caches, upstream-oauth's): each lookup counted
 * by its outcome under the cache's label, and the entries of all caches of one label summed at
 * scrape time, however many plugin instances (and reloads) hold one.
 */
import type { Shared } from "../../lib/shared.ts";
import type { Metrics, TokenCacheEvent } from "../../metrics.ts";
import type { CacheResult } from "./token-cache.ts";

/** The `gateway_token_cache_events_total` event of a lookup's outcome. */
export const CACHE_EVENT: Readonly<Record<CacheResult<unknown>["state"], TokenCacheEvent>> = {
  hit: "hit",
  miss: "miss",
  shared: "miss", // this process's cache missed; the fleet's hits are gateway_cluster_* metrics
  refresh: "refresh",
  resurrect: "resurrected",
  negative: "negative_hit",
};

/** What `meterCacheSize` needs of a cache. */
export interface SizedCache {
  readonly size: number;
  clear(): void;
}

/**
 * Adds `cache` to `gateway_token_cache_entries{cache=label}`: one size function per label for
 * the whole gateway, summing every cache registered under it. Returns the cache's `close`: it
 * leaves the sum and is emptied.
 */
export function meterCacheSize(
  ctx: { readonly shared: Shared; readonly metrics?: Pick<Metrics, "tokenCacheSize"> },
  label: string,
  cache: SizedCache,
): () => void {
  const caches = ctx.shared.once(`token-cache.${label}.caches`, () => {
    const set = new Set<SizedCache>();
    ctx.metrics?.tokenCacheSize(label, () => [...set].reduce((n, c) => n + c.size, 0));
    return set;
  });
  caches.add(cache);
  return () => {
    caches.delete(cache);
    cache.clear();
  };
}
