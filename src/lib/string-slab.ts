/**
 * Strings kept as bytes in a few large buffers instead of one JS string each: 100 000 cached
 * tokens as strings cost ~2 KiB of RSS apiece (the string allocator's slack, docs/benchmarks.md),
 * as slab bytes about their length. A compact JWS is kept as its decoded payload and
 * signature (¾ of their length) and the index of its protected header, the same for all of one
 * issuer's tokens, in a small table, when that round-trips exactly; its payload as the difference
 * from the first payload seen under that header (src/lib/byte-delta.ts) when that is shorter: one
 * issuer's tokens differ in a few ids and times. Other ASCII strings as their bytes; anything
 * else is not taken (`put` answers -1) and stays a string with its owner. A short ASCII tail (the
 * grant's kept claims as JSON) may be stored beside a string in the same slot.
 *
 * Slots come in size classes of 16 bytes, each class in 64 KiB chunks with a free list: a freed
 * slot is reused by the next string of its class, and the memory held is the peak number of live
 * strings per class (the owner's bound, e.g. `cache_tokens_max`), never returned before `clear()`.
 */

import { ByteDelta, maxEncodedLength } from "./byte-delta.ts";

const GRAIN = 16;
const CHUNK_BYTES = 64 * 1024;
/** A reference is `class * SLOTS + slot`. */
const SLOTS = 2 ** 32;
// kind (1), JWS header index (1), stored length (4), JWS payload bytes stored (4), JWS payload
// length (4), tail length + 1 (4, 0: no tail)
const HEADER = 18;
/** Distinct JWS protected headers remembered; tokens with others are kept as ASCII. */
const MAX_JWS_HEADERS = 255;
const KIND_ASCII = 0;
const KIND_JWS = 1;
/** A JWS whose payload is stored as its delta from the header's first payload. */
const KIND_JWS_DELTA = 2;
const JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const ASCII = /^[\x00-\x7f]*$/;

// ES2026 base64 on Uint8Array (Bun 1.4, Deno 2.9); not in TypeScript's lib yet.
interface Base64Bytes extends Uint8Array {
  toBase64(options: { alphabet: "base64url"; omitPadding: boolean }): string;
}
const fromBase64 = (Uint8Array as unknown as { fromBase64(s: string, o: { alphabet: "base64url" }): Uint8Array }).fromBase64;
const B64U = { alphabet: "base64url", omitPadding: true } as const;
const toB64u = (bytes: Uint8Array) => (bytes as Base64Bytes).toBase64(B64U);

interface SizeClass {
  readonly size: number;
  readonly perChunk: number;
  readonly chunks: Uint8Array[];
  readonly free: number[];
  /** Slots handed out so far (the next never-used slot). */
  used: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Reused for deltas being written and payloads being rebuilt (one at a time: all of it is synchronous). */
let scratch = new Uint8Array(4096);
const scratchOf = (n: number) => (scratch.length >= n ? scratch : (scratch = new Uint8Array(n * 2)));

/** A compact JWS's payload and signature decoded, or undefined when base64url would not give back the same text. */
function jwsParts(s: string): { header: string; payload: Uint8Array; signature: Uint8Array } | undefined {
  if (!JWS.test(s)) return undefined;
  const [header, ...texts] = s.split(".") as [string, string, string];
  const parts = texts.map((p) => {
    try {
      return fromBase64.call(Uint8Array, p, { alphabet: "base64url" });
    } catch {
      return undefined;
    }
  });
  for (let i = 0; i < 2; i++) if (!parts[i] || toB64u(parts[i]!) !== texts[i]) return undefined;
  return { header, payload: parts[0]!, signature: parts[1]! };
}

export class StringSlab {
  private readonly classes: (SizeClass | undefined)[] = [];
  private live = 0;
  private readonly jwsHeaders: string[] = [];
  private readonly jwsHeaderIndex = new Map<string, number>();
  /** Per JWS header: the first payload seen under it, as the dictionary of the next ones. */
  private readonly jwsDeltas: ByteDelta[] = [];

  /**
   * Stores `s`, and `tail` (ASCII) beside it; its reference, or -1 when it is not a string this
   * slab takes.
   */
  put(s: string, tail?: string): number {
    if (tail !== undefined && !ASCII.test(tail)) return -1;
    let parts = jwsParts(s);
    const headerIndex = parts ? this.headerIndex(parts.header, parts.payload) : -1;
    if (headerIndex < 0) parts = undefined;
    if (!parts && !ASCII.test(s)) return -1;
    let payload = parts?.payload;
    let kind = parts ? KIND_JWS : KIND_ASCII;
    if (payload) {
      const out = scratchOf(maxEncodedLength(payload.length));
      const n = this.jwsDeltas[headerIndex]!.encode(payload, out);
      if (n < payload.length) {
        payload = out.subarray(0, n);
        kind = KIND_JWS_DELTA;
      }
    }
    const length = payload ? payload.length + parts!.signature.length : s.length;
    const tailLength = tail?.length ?? 0;
    const cls = this.sizeClass(Math.ceil((HEADER + length + tailLength) / GRAIN));
    const slot = cls.free.pop() ?? cls.used++;
    if (slot >= SLOTS) throw new RangeError("string slab: too many strings of one size");
    const chunk = Math.floor(slot / cls.perChunk);
    const bytes = (cls.chunks[chunk] ??= new Uint8Array(cls.size * cls.perChunk));
    const at = (slot % cls.perChunk) * cls.size;
    bytes[at] = kind;
    bytes[at + 1] = parts ? headerIndex : 0;
    writeU32(bytes, at + 2, length);
    writeU32(bytes, at + 14, tail === undefined ? 0 : tailLength + 1);
    if (tail) encoder.encodeInto(tail, bytes.subarray(at + HEADER + length, at + HEADER + length + tailLength));
    if (payload) {
      writeU32(bytes, at + 6, payload.length);
      writeU32(bytes, at + 10, parts!.payload.length);
      bytes.set(payload, at + HEADER);
      bytes.set(parts!.signature, at + HEADER + payload.length);
    } else encoder.encodeInto(s, bytes.subarray(at + HEADER, at + HEADER + length));
    this.live++;
    return (cls.size / GRAIN) * SLOTS + slot;
  }

  /** The string stored under `ref` (a new JS string each time). */
  get(ref: number): string {
    const { bytes, at } = this.locate(ref);
    const start = at + HEADER;
    const end = start + readU32(bytes, at + 2);
    if (bytes[at] === KIND_ASCII) return decoder.decode(bytes.subarray(start, end));
    const split = start + readU32(bytes, at + 6);
    let payload = bytes.subarray(start, split);
    if (bytes[at] === KIND_JWS_DELTA) {
      const out = scratchOf(readU32(bytes, at + 10));
      payload = out.subarray(0, this.jwsDeltas[bytes[at + 1]!]!.decode(payload, out));
    }
    return `${this.jwsHeaders[bytes[at + 1]!]}.${toB64u(payload)}.${toB64u(bytes.subarray(split, end))}`;
  }

  /** The tail stored with `ref`, if any. */
  tail(ref: number): string | undefined {
    const { bytes, at } = this.locate(ref);
    const n = readU32(bytes, at + 14);
    if (n === 0) return undefined;
    const start = at + HEADER + readU32(bytes, at + 2);
    return decoder.decode(bytes.subarray(start, start + n - 1));
  }

  /** Gives the slot of `ref` back; `ref` must not be used again. */
  free(ref: number): void {
    const cls = this.classes[Math.floor(ref / SLOTS)]!;
    cls.free.push(ref % SLOTS);
    this.live--;
  }

  clear(): void {
    this.classes.length = 0;
    this.live = 0;
    this.jwsHeaders.length = 0;
    this.jwsHeaderIndex.clear();
    this.jwsDeltas.length = 0;
  }

  /** Strings stored now. */
  get size(): number {
    return this.live;
  }

  /** Bytes of the chunks allocated (the slab's own memory). */
  get reservedBytes(): number {
    let n = 0;
    for (const cls of this.classes) if (cls) for (const chunk of cls.chunks) n += chunk?.length ?? 0;
    return n;
  }

  /**
   * The index of a JWS protected header in the table, added when new with `payload` as its
   * dictionary; -1 when the table is full.
   */
  private headerIndex(header: string, payload: Uint8Array): number {
    let i = this.jwsHeaderIndex.get(header);
    if (i === undefined) {
      if (this.jwsHeaders.length >= MAX_JWS_HEADERS) return -1;
      i = this.jwsHeaders.push(header) - 1;
      this.jwsHeaderIndex.set(header, i);
      this.jwsDeltas[i] = new ByteDelta(payload);
    }
    return i;
  }

  private sizeClass(grains: number): SizeClass {
    let cls = this.classes[grains];
    if (!cls) {
      const size = grains * GRAIN;
      cls = { size, perChunk: Math.max(1, Math.floor(CHUNK_BYTES / size)), chunks: [], free: [], used: 0 };
      this.classes[grains] = cls;
    }
    return cls;
  }

  private locate(ref: number): { bytes: Uint8Array; at: number } {
    const cls = this.classes[Math.floor(ref / SLOTS)]!;
    const slot = ref % SLOTS;
    return { bytes: cls.chunks[Math.floor(slot / cls.perChunk)]!, at: (slot % cls.perChunk) * cls.size };
  }
}

function writeU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = v >>> 24;
}

function readU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}
