/**
 * The token cache: what makes the repeat request cheap, without ever serving a token that is no
 * longer valid or one that belongs to other credentials (keys are keyed hashes, see cache-key.ts).
 *
 * - TTL = the token's remaining validity (min of `expires_in` and JWT `exp`) minus a safety
 *   margin, clamped by `cache_ttl_min`/`cache_ttl_max`, never past validity; `cache_ttl` when the
 *   token says nothing.
 * - A hit past 80 % of the TTL refreshes in the background, so hot keys never wait at the edge.
 * - Concurrent misses for one key share one fetch (single flight).
 * - Rejections (wrong credentials) are remembered for `cache_ttl_neg`, in a separate bounded map
 *   so a flood of wrong secrets cannot evict good tokens.
 * - When the IdP fails, a stale token that is still valid is served for up to
 *   `cache_ttl_resurrect` past its TTL.
 * - Bounded by `cache_tokens_max`, least recently used first out. A hit moves its entry to the
 *   young end only when it is in the older half: moving a key on every hit (Map delete + set)
 *   costs 5-50 µs in JavaScriptCore once the map holds 10 000s of keys and one key is hot.
 * - With a `codec`, an entry holds its value packed (e.g. the token's bytes in a StringSlab) and
 *   the last HOT_VALUES values served stay unpacked, so a busy key pays nothing for it.
 * - Entries live in an EntryTable (keys as bytes, times in typed columns): no object per entry.
 */
import { AuthError } from "../../errors.ts";
import { EntryTable } from "./entry-table.ts";

export interface TokenCachePolicy {
  /** `cache_ttl`: lifetime of a token that states none (s). */
  readonly ttl: number;
  readonly ttlMin?: number | undefined;
  readonly ttlMax?: number | undefined;
  /** `cache_ttl_neg`: how long a rejection is remembered (s); 0 disables. */
  readonly ttlNeg: number;
  /** `cache_ttl_resurrect`: how long past its TTL a still-valid token may stand in for a failing IdP (s). */
  readonly ttlResurrect?: number | undefined;
  /** `cache_tokens_max`. */
  readonly maxEntries: number;
}

/** A freshly fetched value and, when known, when it stops being valid. */
export interface Fresh<T> {
  readonly value: T;
  /** Epoch ms at which the token expires (min of `expires_in` and `exp`). */
  readonly expiresAt?: number | undefined;
  /** Found in the fleet's shared cache (another gateway fetched it), not at the IdP. */
  readonly shared?: boolean | undefined;
}

/** `shared`: not in this process's cache, but in the fleet's (no call to the IdP). */
type CacheHit<T> = { readonly state: "hit" | "miss" | "shared" | "refresh" | "resurrect"; readonly value: T };
export type CacheResult<T> = CacheHit<T> | { readonly state: "negative"; readonly error: unknown };

/** How many recently served values a cache with a codec keeps unpacked. */
export const HOT_VALUES = 1024;

/**
 * How a local entry stores its value and makes it whole again: `unpack` runs when a value not
 * among the recently served is served, `free` once the entry is gone (its packed form is not
 * used after that, so a slot may be reused).
 */
export interface ValueCodec<T> {
  pack(value: T): unknown;
  unpack(packed: unknown): T;
  free(packed: unknown): void;
}

/** Share of the TTL after which a hit refreshes ahead. */
export const REFRESH_AHEAD = 0.8;
/** Wait after a failed background refresh or a resurrection before asking the IdP again. */
export const RETRY_AFTER_FAILURE_MS = 2000;

/** Seconds cut from a token's lifetime so it is not used at its very last moment. */
export function safetyMargin(lifetime: number): number {
  return Math.min(lifetime * 0.1, 30);
}

/** The cache TTL (s) for a token valid `lifetime` more seconds (undefined: unknown). */
export function cacheTtl(policy: Pick<TokenCachePolicy, "ttl" | "ttlMin" | "ttlMax">, lifetime: number | undefined): number {
  let ttl = lifetime === undefined ? policy.ttl : lifetime - safetyMargin(lifetime);
  if (policy.ttlMax !== undefined) ttl = Math.min(ttl, policy.ttlMax);
  if (policy.ttlMin !== undefined) ttl = Math.max(ttl, policy.ttlMin);
  if (lifetime !== undefined) ttl = Math.min(ttl, lifetime);
  return ttl;
}

export interface TokenCacheOptions<T = unknown> {
  readonly now?: () => number;
  /** Errors that mean "these credentials are wrong" (cached negatively). Default: `AuthError`. */
  readonly isRejection?: (error: unknown) => boolean;
  /** A background refresh failed (the stale token keeps being served while it is fresh). */
  readonly onRefreshError?: (error: unknown) => void;
  /** A valid entry was dropped to stay within `maxEntries`. */
  readonly onEvict?: () => void;
  /** The fleet's cache behind this one (`[cluster]`), asked instead of `fetch` on a miss or refresh. */
  readonly shared?: SharedTokenLayer<T> | undefined;
  /**
   * What a local entry keeps of a fetched value (default: all of it), e.g. only the claims this
   * gateway reads: 100 000 entries are held for hours, so every byte of one counts. The fleet's
   * store gets the whole value, for nodes that read other parts of it.
   */
  readonly keep?: ((value: T) => T) | undefined;
  /** Stores local entries packed (after `keep`): 100 000 tokens as bytes rather than strings. */
  readonly codec?: ValueCodec<T> | undefined;
}

/**
 * A cache shared by several gateways (src/cluster/token-store.ts). It answers a local miss or
 * refresh from the fleet's entry, or calls `fetch` itself: once for the whole fleet, or alone
 * while the fleet's store is unreachable. Its errors are `fetch`'s errors.
 */
export interface SharedTokenLayer<T> {
  load(key: string, fetch: () => Promise<Fresh<T>>, policy: TokenCachePolicy): Promise<Fresh<T>>;
}

export class TokenCache<T> {
  /** Keys, LRU order and times; the values beside it, by slot. */
  private readonly table = new EntryTable();
  /** Per slot: a packed value that is not a number (with a codec), or the value (without). */
  private readonly boxed: unknown[] = [];
  /** Per slot: the value itself while the entry is among the recently served (with a codec). */
  private readonly hot: (T | undefined)[] = [];
  private readonly negatives = new Map<string, { readonly error: unknown; readonly until: number }>();
  private readonly inflight = new Map<string, Promise<{ value: T; shared: boolean }>>();
  private readonly now: () => number;
  private readonly isRejection: (error: unknown) => boolean;
  private readonly onRefreshError: (error: unknown) => void;
  private readonly onEvict: () => void;
  private readonly maxNegatives: number;
  private readonly shared: SharedTokenLayer<T> | undefined;
  private readonly keep: (value: T) => T;
  private readonly codec: ValueCodec<T> | undefined;
  /** With a codec: the slots whose `hot` is set, oldest overwritten first (-1: none). */
  private readonly warm = new Int32Array(HOT_VALUES).fill(-1);
  /** Per slot: its position in `warm` + 1, 0 when not there. */
  private warmPosition: number[] = [];
  private warmAt = 0;
  /** Counts stores and moves: the entries stored or moved after an entry are those with a higher tick. */
  private tick = 0;
  /** The last key looked up and its slot: a busy client's key is the same string on every request. */
  private lastKey: string | undefined;
  private lastSlot = -1;

  constructor(
    readonly policy: TokenCachePolicy,
    options: TokenCacheOptions<T> = {},
  ) {
    this.now = options.now ?? Date.now;
    this.isRejection = options.isRejection ?? ((e) => e instanceof AuthError);
    this.onRefreshError = options.onRefreshError ?? (() => {});
    this.onEvict = options.onEvict ?? (() => {});
    this.shared = options.shared;
    this.keep = options.keep ?? ((value) => value);
    this.codec = options.codec;
    this.maxNegatives = Math.max(1, Math.ceil(policy.maxEntries / 10));
  }

  get size(): number {
    return this.table.size;
  }

  /**
   * The value for `key`: cached, or from `fetch` (once for all concurrent callers). Rejections
   * are thrown on a miss and answered as `negative` while remembered; IdP failures are thrown
   * unless a still-valid token can be resurrected.
   */
  async get(key: string, fetch: () => Promise<Fresh<T>>): Promise<CacheResult<T>> {
    const now = this.now();
    const t = this.table;
    const slot = this.find(key);
    if (slot >= 0 && now < t.freshUntil[slot]!) {
      this.keepYoung(slot);
      if (this.refreshDue(slot, now, key)) {
        this.load(key, fetch).catch((error) => {
          const at = this.find(key);
          if (!this.isRejection(error) && at >= 0) t.retryAt[at] = this.now() + RETRY_AFTER_FAILURE_MS;
          this.onRefreshError(error);
        });
        return { state: "refresh", value: this.valueOf(slot) };
      }
      return { state: "hit", value: this.valueOf(slot) };
    }
    const negative = this.negatives.get(key);
    if (negative) {
      if (now < negative.until) return { state: "negative", error: negative.error };
      this.negatives.delete(key);
    }
    if (slot >= 0 && now < t.retryAt[slot]! && this.canResurrect(slot, now)) return { state: "resurrect", value: this.valueOf(slot) };
    try {
      const loaded = await this.load(key, fetch);
      return { state: loaded.shared ? "shared" : "miss", value: loaded.value };
    } catch (error) {
      if (this.isRejection(error)) throw error;
      const stale = this.find(key);
      const at = this.now();
      if (stale >= 0 && this.canResurrect(stale, at)) {
        t.retryAt[stale] = at + RETRY_AFTER_FAILURE_MS;
        return { state: "resurrect", value: this.valueOf(stale) };
      }
      throw error;
    }
  }

  /**
   * The value of `key` when it is a plain hit (fresh, no refresh due), without a promise; else
   * undefined, and `get` decides. What a busy client's request takes.
   */
  hit(key: string): T | undefined {
    const slot = this.find(key);
    if (slot < 0) return undefined;
    const t = this.table;
    const now = this.now();
    if (!(now < t.freshUntil[slot]!) || this.refreshDue(slot, now, key)) return undefined;
    this.keepYoung(slot);
    return this.valueOf(slot);
  }

  /** A used entry in the older half moves to the young end, away from eviction. */
  private keepYoung(slot: number): void {
    const t = this.table;
    if (this.tick - t.tick[slot]! >= Math.max(1, t.size >>> 1)) {
      t.touch(slot);
      t.tick[slot] = ++this.tick;
    }
  }

  /** A background refresh is due: past its refresh point, no retry pause, none running. */
  private refreshDue(slot: number, now: number, key: string): boolean {
    const t = this.table;
    return now >= t.refreshAt[slot]! && now >= t.retryAt[slot]! && !this.inflight.has(key);
  }

  delete(key: string): void {
    this.drop(key);
    this.negatives.delete(key);
  }

  clear(): void {
    if (this.codec) for (let slot = this.table.oldest(); slot >= 0; slot = this.table.next(slot)) this.codec.free(this.packedOf(slot));
    this.table.clear();
    this.boxed.length = 0;
    this.hot.length = 0;
    this.warm.fill(-1);
    this.warmPosition = [];
    this.lastKey = undefined;
    this.negatives.clear();
  }

  private find(key: string): number {
    if (key === this.lastKey) return this.lastSlot;
    const slot = this.table.find(key);
    if (slot >= 0) {
      this.lastKey = key;
      this.lastSlot = slot;
    }
    return slot;
  }

  /** Removes the entry of `key`, giving its packed value back to the codec. */
  private drop(key: string): void {
    const slot = this.find(key);
    if (slot >= 0) this.dropSlot(slot);
  }

  private dropSlot(slot: number): void {
    if (this.codec) this.codec.free(this.packedOf(slot));
    if (slot === this.lastSlot) this.lastKey = undefined;
    const position = this.warmPosition[slot];
    if (position) {
      this.warm[position - 1] = -1;
      this.warmPosition[slot] = 0;
    }
    this.boxed[slot] = undefined;
    this.hot[slot] = undefined;
    this.table.remove(slot);
  }

  private packedOf(slot: number): unknown {
    const n = this.table.packed[slot]!;
    return Number.isNaN(n) ? this.boxed[slot] : n;
  }

  /** The value of a slot: as served recently, or unpacked (and among the recently served from now on). */
  private valueOf(slot: number): T {
    if (!this.codec) return this.boxed[slot] as T;
    const hot = this.hot[slot];
    if (hot !== undefined) return hot;
    const value = this.codec.unpack(this.packedOf(slot));
    this.warmUp(slot, value);
    return value;
  }

  private warmUp(slot: number, value: T): void {
    this.hot[slot] = value;
    const position = this.warmPosition[slot];
    if (position) this.warm[position - 1] = -1;
    const old = this.warm[this.warmAt]!;
    if (old >= 0) {
      this.hot[old] = undefined;
      this.warmPosition[old] = 0;
    }
    this.warm[this.warmAt] = slot;
    this.warmPosition[slot] = this.warmAt + 1;
    this.warmAt = (this.warmAt + 1) % HOT_VALUES;
  }

  private canResurrect(slot: number, now: number): boolean {
    const window = (this.policy.ttlResurrect ?? 0) * 1000;
    return window > 0 && now < Math.min(this.table.freshUntil[slot]! + window, this.table.validUntil[slot]!);
  }

  /** Single flight: one fetch per key at a time; the result is stored before anyone sees it. */
  private load(key: string, fetch: () => Promise<Fresh<T>>): Promise<{ value: T; shared: boolean }> {
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const shared = this.shared;
    const started = Promise.resolve()
      .then(shared ? () => shared.load(key, fetch, this.policy) : fetch)
      .then(
        (fresh) => {
          const value = this.keep(fresh.value);
          this.store(key, value, fresh.expiresAt);
          return { value, shared: fresh.shared === true };
        },
        (error: unknown) => {
          if (this.isRejection(error)) {
            this.drop(key); // credentials revoked at the IdP: stop serving their token
            this.remember(key, error);
          }
          throw error;
        },
      )
      .finally(() => {
        if (this.inflight.get(key) === started) this.inflight.delete(key);
      });
    this.inflight.set(key, started);
    return started;
  }

  private store(key: string, value: T, expiresAt: number | undefined): void {
    const now = this.now();
    const lifetime = expiresAt === undefined ? undefined : (expiresAt - now) / 1000;
    const ttl = cacheTtl(this.policy, lifetime);
    this.drop(key);
    if (!(ttl > 0)) return; // about to expire: used once, never cached
    const t = this.table;
    const slot = t.add(key);
    t.freshUntil[slot] = now + ttl * 1000;
    t.refreshAt[slot] = now + ttl * 1000 * REFRESH_AHEAD;
    t.validUntil[slot] = expiresAt ?? Infinity;
    t.retryAt[slot] = 0;
    t.tick[slot] = ++this.tick;
    if (this.codec) {
      const packed = this.codec.pack(value);
      t.packed[slot] = typeof packed === "number" ? packed : Number.NaN;
      this.boxed[slot] = typeof packed === "number" ? undefined : packed;
      this.warmUp(slot, value);
    } else this.boxed[slot] = value;
    while (t.size > this.policy.maxEntries) {
      this.dropSlot(t.oldest());
      this.onEvict();
    }
  }

  private remember(key: string, error: unknown): void {
    if (!(this.policy.ttlNeg > 0)) return;
    this.negatives.delete(key);
    this.negatives.set(key, { error, until: this.now() + this.policy.ttlNeg * 1000 });
    while (this.negatives.size > this.maxNegatives) this.negatives.delete(this.negatives.keys().next().value!);
  }
}
