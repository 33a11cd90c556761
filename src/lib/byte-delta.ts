/**
 * Bytes stored as the difference from a reference (LZ77 against a fixed dictionary): runs found in
 * the dictionary become 3-byte copies, the rest literal runs. One IdP's JWT payloads differ from
 * each other mostly in a few ids and times, so the first payload seen is a dictionary that cuts the
 * next ones to about a third (docs/benchmarks.md, the token cache's memory).
 *
 * Ops: a byte below 0x80 is a literal run of (byte + 1) bytes that follow; a byte from 0x80 is a
 * copy of ((byte & 0x7f) + MIN_MATCH) dictionary bytes from the little-endian u16 offset after it.
 */

const MIN_MATCH = 4;
const MAX_COPY = 0x7f + MIN_MATCH;
const MAX_LITERAL = 0x80;
/** The dictionary's bytes beyond this are not used: a JWT payload is rarely longer, and 255 of them stay small. */
const MAX_DICTIONARY = 4096;
const HASH_BITS = 10;
/** Candidates tried per position: the longest match among them wins. */
const MAX_TRIES = 16;

const hash4 = (b: Uint8Array, i: number) =>
  Math.imul(b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24), 0x9e3779b1) >>> (32 - HASH_BITS);

/** The most `encode` may write for `n` input bytes (all literals). */
export const maxEncodedLength = (n: number) => n + Math.ceil(n / MAX_LITERAL);

export class ByteDelta {
  private readonly dict: Uint8Array;
  /** The last dictionary position of each 4-byte hash, and the one before each position (-1: none). */
  private readonly head = new Int32Array(1 << HASH_BITS).fill(-1);
  private readonly prev: Int16Array;

  constructor(dictionary: Uint8Array) {
    this.dict = dictionary.slice(0, MAX_DICTIONARY);
    this.prev = new Int16Array(this.dict.length).fill(-1);
    for (let i = 0; i + MIN_MATCH <= this.dict.length; i++) {
      const h = hash4(this.dict, i);
      this.prev[i] = this.head[h]!;
      this.head[h] = i;
    }
  }

  /** Writes `input`'s delta into `out` (at least `maxEncodedLength(input.length)` long); its length. */
  encode(input: Uint8Array, out: Uint8Array): number {
    const dict = this.dict;
    const n = input.length;
    let o = 0;
    let literalsFrom = 0;
    const flushLiterals = (to: number) => {
      for (let at = literalsFrom; at < to; ) {
        const run = Math.min(MAX_LITERAL, to - at);
        out[o++] = run - 1;
        out.set(input.subarray(at, at + run), o);
        o += run;
        at += run;
      }
    };
    let i = 0;
    while (i + MIN_MATCH <= n) {
      let best = 0;
      let bestAt = 0;
      let tries = 0;
      for (let at = this.head[hash4(input, i)]!; at >= 0 && tries < MAX_TRIES; at = this.prev[at]!, tries++) {
        let len = 0;
        while (i + len < n && at + len < dict.length && dict[at + len] === input[i + len]) len++;
        if (len > best) {
          best = len;
          bestAt = at;
        }
      }
      if (best < MIN_MATCH) {
        i++;
        continue;
      }
      flushLiterals(i);
      for (let left = best, at = bestAt; left > 0; ) {
        // A copy shorter than MIN_MATCH cannot be written: leave it to the next literal run.
        const len = Math.min(left, MAX_COPY);
        if (len < MIN_MATCH) break;
        out[o++] = 0x80 | (len - MIN_MATCH);
        out[o++] = at & 0xff;
        out[o++] = at >>> 8;
        at += len;
        left -= len;
        i += len;
      }
      literalsFrom = i;
    }
    flushLiterals(n);
    return o;
  }

  /** Writes the bytes `encoded` stands for into `out` (long enough for them); their length. */
  decode(encoded: Uint8Array, out: Uint8Array): number {
    const dict = this.dict;
    let o = 0;
    for (let i = 0; i < encoded.length; ) {
      const op = encoded[i++]!;
      if (op < 0x80) {
        // Byte loops: the runs are short, and a subarray per op would be an allocation each.
        for (const end = i + op + 1; i < end; ) out[o++] = encoded[i++]!;
      } else {
        const len = (op & 0x7f) + MIN_MATCH;
        const at = encoded[i]! | (encoded[i + 1]! << 8);
        i += 2;
        for (let k = at, end = at + len; k < end; ) out[o++] = dict[k++]!;
      }
    }
    return o;
  }
}
