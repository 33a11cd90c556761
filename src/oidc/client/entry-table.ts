/**
 * The token cache's index: key → slot, the slots in least-recently-used order, and each slot's
 * times in typed columns. 100 000 cached tokens as a Map of key strings to entry objects left two
 * small long-lived objects per token scattered among a request's garbage, which kept pages of it
 * resident after a fill (docs/benchmarks.md, the token cache's memory); here a key is bytes in a
 * column and a slot a number, so nothing per entry lives in the JS heap.
 *
 * Keys are the cache's keyed hashes (43 base64url characters); a key that does not fit a column
 * (longer than KEY_WIDTH or not Latin-1) is kept as a string beside it. Open addressing with
 * linear probing and backward-shift deletion; the columns double when full and never shrink
 * before `clear()` (the cache's own bound, `cache_tokens_max`, bounds them).
 */

/** Bytes of a key kept in the key column. */
const KEY_WIDTH = 48;
/** `keyLength` of a key kept as a string in `longKeys`. */
const LONG_KEY = 0xff;
const FIRST_CAPACITY = 16;
const NONE = -1;

function hashKey(key: string): number {
  let h = 0x811c9dc5 ^ key.length;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const fitsColumn = (key: string) => key.length < KEY_WIDTH && /^[\x00-\xff]*$/.test(key);

export class EntryTable {
  /** Served until then (epoch ms). */
  freshUntil = new Float64Array(FIRST_CAPACITY);
  /** A hit after this refreshes in the background. */
  refreshAt = new Float64Array(FIRST_CAPACITY);
  /** The token's own end of validity (Infinity: unknown). */
  validUntil = new Float64Array(FIRST_CAPACITY);
  /** After a failed fetch, the IdP is not asked again for this key before then. */
  retryAt = new Float64Array(FIRST_CAPACITY);
  /** The owner's counter when the slot was stored or last moved to the young end. */
  tick = new Float64Array(FIRST_CAPACITY);
  /** A packed value that is a number (NaN: the owner keeps it elsewhere). */
  packed = new Float64Array(FIRST_CAPACITY);
  private keyBytes = new Uint8Array(FIRST_CAPACITY * KEY_WIDTH);
  private keyLength = new Uint8Array(FIRST_CAPACITY);
  private hashes = new Uint32Array(FIRST_CAPACITY);
  /** Least recently used order (older, younger); `younger` also chains the free slots. */
  private older = new Int32Array(FIRST_CAPACITY);
  private younger = new Int32Array(FIRST_CAPACITY);
  /** Slot + 1 per bucket, 0 empty; twice the capacity, a power of two. */
  private buckets = new Int32Array(FIRST_CAPACITY * 2);
  private readonly longKeys = new Map<number, string>();
  private capacity = FIRST_CAPACITY;
  private used = 0;
  private free = NONE;
  private oldestSlot = NONE;
  private youngestSlot = NONE;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** The slot of `key`, or -1. */
  find(key: string): number {
    const mask = this.buckets.length - 1;
    const hash = hashKey(key);
    for (let b = hash & mask; ; b = (b + 1) & mask) {
      const slot = this.buckets[b]! - 1;
      if (slot === NONE) return NONE;
      if (this.hashes[slot] === hash && this.keyIs(slot, key)) return slot;
    }
  }

  /** A new slot for `key` (not in the table), at the young end; its columns are the caller's to set. */
  add(key: string): number {
    if (this.free === NONE && this.used === this.capacity) this.grow();
    let slot: number;
    if (this.free !== NONE) {
      slot = this.free;
      this.free = this.younger[slot]!;
    } else slot = this.used++;
    const hash = hashKey(key);
    this.hashes[slot] = hash;
    if (fitsColumn(key)) {
      this.keyLength[slot] = key.length;
      const at = slot * KEY_WIDTH;
      for (let i = 0; i < key.length; i++) this.keyBytes[at + i] = key.charCodeAt(i);
    } else {
      this.keyLength[slot] = LONG_KEY;
      this.longKeys.set(slot, key);
    }
    this.place(slot, hash);
    this.link(slot);
    this.count++;
    return slot;
  }

  /** Takes `slot` out; it may be handed out again by the next `add`. */
  remove(slot: number): void {
    const mask = this.buckets.length - 1;
    let b = this.hashes[slot]! & mask;
    while (this.buckets[b] !== slot + 1) b = (b + 1) & mask;
    // Backward shift: move later members of the probe run into the gap, so no tombstones build up.
    for (let next = (b + 1) & mask; this.buckets[next] !== 0; next = (next + 1) & mask) {
      const home = this.hashes[this.buckets[next]! - 1]! & mask;
      if (((next - home) & mask) >= ((next - b) & mask)) {
        this.buckets[b] = this.buckets[next]!;
        b = next;
      }
    }
    this.buckets[b] = 0;
    this.unlink(slot);
    if (this.keyLength[slot] === LONG_KEY) this.longKeys.delete(slot);
    this.younger[slot] = this.free;
    this.free = slot;
    this.count--;
  }

  /** Moves `slot` to the young end (the last to be evicted). */
  touch(slot: number): void {
    if (slot === this.youngestSlot) return;
    this.unlink(slot);
    this.link(slot);
  }

  /** The least recently used slot, or -1 when empty. */
  oldest(): number {
    return this.oldestSlot;
  }

  /** The slot after `slot` towards the young end, or -1. */
  next(slot: number): number {
    return this.younger[slot]!;
  }

  /** Empties the table and gives its columns back. */
  clear(): void {
    Object.assign(this, new EntryTable());
  }

  private keyIs(slot: number, key: string): boolean {
    const length = this.keyLength[slot]!;
    if (length === LONG_KEY) return this.longKeys.get(slot) === key;
    if (length !== key.length) return false;
    const at = slot * KEY_WIDTH;
    for (let i = 0; i < length; i++) if (this.keyBytes[at + i] !== key.charCodeAt(i)) return false;
    return true;
  }

  private place(slot: number, hash: number): void {
    const mask = this.buckets.length - 1;
    let b = hash & mask;
    while (this.buckets[b] !== 0) b = (b + 1) & mask;
    this.buckets[b] = slot + 1;
  }

  private link(slot: number): void {
    this.older[slot] = this.youngestSlot;
    this.younger[slot] = NONE;
    if (this.youngestSlot === NONE) this.oldestSlot = slot;
    else this.younger[this.youngestSlot] = slot;
    this.youngestSlot = slot;
  }

  private unlink(slot: number): void {
    const older = this.older[slot]!;
    const younger = this.younger[slot]!;
    if (older === NONE) this.oldestSlot = younger;
    else this.younger[older] = younger;
    if (younger === NONE) this.youngestSlot = older;
    else this.older[younger] = older;
  }

  private grow(): void {
    const capacity = this.capacity * 2;
    const widen = <A extends Float64Array | Int32Array | Uint32Array | Uint8Array>(a: A, per = 1): A => {
      const b = new (a.constructor as new (n: number) => A)(capacity * per);
      b.set(a);
      return b;
    };
    this.freshUntil = widen(this.freshUntil);
    this.refreshAt = widen(this.refreshAt);
    this.validUntil = widen(this.validUntil);
    this.retryAt = widen(this.retryAt);
    this.tick = widen(this.tick);
    this.packed = widen(this.packed);
    this.keyBytes = widen(this.keyBytes, KEY_WIDTH);
    this.keyLength = widen(this.keyLength);
    this.hashes = widen(this.hashes);
    this.older = widen(this.older);
    this.younger = widen(this.younger);
    this.capacity = capacity;
    this.buckets = new Int32Array(capacity * 2);
    // Every slot below `used` is live here (growing only happens with no free slot).
    for (let slot = 0; slot < this.used; slot++) this.place(slot, this.hashes[slot]!);
  }
}
