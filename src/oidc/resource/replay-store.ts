/**
 * Remembers DPoP proof `jti`s for as long as the proof could still be accepted (RFC 9449 §11.1),
 * so a captured proof cannot be played again. Keys are a hash of the key thumbprint and the
 * `jti`: a caller cannot choose what we store, and the store never holds a proof.
 *
 * The interface is small so a shared store (Redis `SET NX PX`) can replace the in-memory one
 * when several gateways must refuse each other's replays.
 */
import { base64url } from "../../lib/base64url.ts";

export interface ReplayStore {
  /**
   * Records `key` until `expiresAt` (ms since the epoch). Resolves `true` when the key is new,
   * `false` when it was seen before (a replay) or can no longer be told apart from one.
   */
  checkAndRecord(key: string, expiresAt: number, now?: number): boolean | Promise<boolean>;
}

export interface MemoryReplayStoreOptions {
  /** Entries kept at most; past it the oldest is dropped (see `watermark`). Default 200 000. */
  readonly maxEntries?: number;
}

export interface MemoryReplayStore extends ReplayStore {
  readonly size: number;
  /** Entries dropped because the store was full. */
  readonly evictions: number;
}

const encoder = new TextEncoder();

/**
 * The store key of one proof: SHA-256 over the thumbprint and the `jti`, length-prefixed so
 * no two (jkt, jti) pairs collide by concatenation. 128 bits are kept: collisions are out of reach.
 */
export async function replayKey(jkt: string, jti: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(`${jkt.length}:${jkt}:${jti}`)));
  return base64url(digest.subarray(0, 16));
}

/** A synchronous SHA-256 of a string's UTF-8 bytes (the runtime's `sha256`). */
export type Sha256 = (data: string) => Uint8Array;

/** `replayKey` with a synchronous SHA-256: the same key, without a WebCrypto round trip per proof. */
export function replayKeySync(jkt: string, jti: string, sha256: Sha256): string {
  return base64url(sha256(`${jkt.length}:${jkt}:${jti}`).subarray(0, 16));
}

/**
 * A bounded, expiring set in one insertion-ordered Map. Expired entries are swept from the
 * front as new ones come in (amortised O(1)). When the store is full of live entries the
 * oldest is dropped and its expiry becomes a watermark: a proof that would expire no later
 * than a dropped one is refused, because we can no longer prove it was not seen. Fresh proofs
 * expire later than anything dropped, so they still pass; replays never do.
 */
export function createMemoryReplayStore(options: MemoryReplayStoreOptions = {}): MemoryReplayStore {
  const max = options.maxEntries ?? 200_000;
  if (!Number.isInteger(max) || max < 1) throw new RangeError("'maxEntries' must be a positive integer");
  const entries = new Map<string, number>();
  let watermark = 0;
  let evictions = 0;

  const sweep = (now: number) => {
    // Insertion order is close to expiry order (the window is the same for every proof); an
    // entry that outlives its neighbours is swept on a later pass, and `has` below checks expiry.
    for (const [key, expiresAt] of entries) {
      if (expiresAt > now) break;
      entries.delete(key);
    }
  };

  return {
    get size() {
      return entries.size;
    },
    get evictions() {
      return evictions;
    },
    checkAndRecord(key, expiresAt, now = Date.now()) {
      sweep(now);
      const seen = entries.get(key);
      if (seen !== undefined && seen > now) return false;
      if (expiresAt <= watermark) return false;
      if (seen !== undefined) entries.delete(key);
      while (entries.size >= max) {
        const oldest = entries.entries().next().value as [string, number];
        entries.delete(oldest[0]);
        watermark = Math.max(watermark, oldest[1]);
        evictions++;
      }
      entries.set(key, expiresAt);
      return true;
    },
  };
}
