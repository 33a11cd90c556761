/**
 * RFC 6455 framing for both ends the gateway plays: towards the upstream it is the client (frames
 * it sends are masked, §5.3, frames it reads are not); on the mTLS listener it is the server
 * (the reverse). Fragmented messages are joined before delivery.
 */
import { concatBytes } from "./bytes.ts";

export const OP = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

const encoder = new TextEncoder();

/** One frame with FIN set: masked as a client sends it, or (`masked` false) as a server does. */
export function encodeFrame(opcode: number, payload: Uint8Array, masked = true): Uint8Array {
  const length = payload.byteLength;
  const maskBit = masked ? 0x80 : 0;
  const headerLength = 2 + (length < 126 ? 0 : length < 65536 ? 2 : 8) + (masked ? 4 : 0);
  // A masked payload starts on a 4-byte boundary of its buffer, so it is masked a word at a time.
  const lead = masked ? (4 - (headerLength & 3)) & 3 : 0;
  const frame = new Uint8Array(lead + headerLength + length).subarray(lead);
  frame[0] = 0x80 | opcode;
  let at = 2;
  if (length < 126) frame[1] = maskBit | length;
  else if (length < 65536) {
    frame[1] = maskBit | 126;
    frame[2] = length >>> 8;
    frame[3] = length & 0xff;
    at = 4;
  } else {
    frame[1] = maskBit | 127;
    const view = new DataView(frame.buffer, frame.byteOffset);
    view.setUint32(2, Math.floor(length / 2 ** 32));
    view.setUint32(6, length >>> 0);
    at = 10;
  }
  frame.set(payload, headerLength);
  if (!masked) return frame;
  const mask = frame.subarray(at, at + 4);
  crypto.getRandomValues(mask);
  applyMask(frame.subarray(headerLength), mask);
  return frame;
}

export function encodeMessage(data: string | Uint8Array, masked = true): Uint8Array {
  return typeof data === "string" ? encodeFrame(OP.text, encoder.encode(data), masked) : encodeFrame(OP.binary, data, masked);
}

/** A close frame; codes a peer may not send (1005, 1006, 1015, out of range) become an empty close. */
export function encodeClose(code?: number, reason = "", masked = true): Uint8Array {
  if (code === undefined || code === 1005 || code === 1006 || code === 1015 || code < 1000 || code > 4999)
    return encodeFrame(OP.close, new Uint8Array(0), masked);
  const text = encoder.encode(reason).subarray(0, 123);
  const payload = new Uint8Array(2 + text.byteLength);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(text, 2);
  return encodeFrame(OP.close, payload, masked);
}

export interface FrameEvents {
  message(data: string | Uint8Array): void;
  ping(payload: Uint8Array): void;
  close(code: number | undefined, reason: string): void;
  /** The peer broke the protocol (a wrongly masked or oversized frame, a bad fragment). */
  error(message: string): void;
}

/** A frame whose header was read and whose payload is still arriving, in `chunks`. */
interface PartialFrame {
  readonly fin: boolean;
  readonly opcode: number;
  readonly mask: Uint8Array | undefined;
  readonly length: number;
  readonly chunks: Uint8Array[];
  received: number;
}

/** The longest frame header: 2 bytes, a 64-bit length, a mask. */
const MAX_HEADER = 14;

/** Reads frames from a byte stream, whatever the chunk boundaries. */
export class FrameReader {
  /** Chunks not read yet: while paused, or a header's first bytes. */
  #pending: Uint8Array[] = [];
  /** The frame being read: a big payload arrives in many chunks and is copied once, when whole. */
  #partial: PartialFrame | undefined;
  #fragments: Uint8Array[] = [];
  #fragmentOp = 0;
  #fragmentBytes = 0;
  /** Paused: chunks stay in `#pending` until `resume` (the receiver cannot take more now). */
  #paused = false;
  /** After a close frame or a protocol error nothing more is read (RFC 6455 §5.5.1, §7.1.7). */
  #ended = false;
  readonly #decoder = new TextDecoder();

  /** `peer` names who sends the frames read: a client masks every frame, a server none. */
  constructor(
    private readonly events: FrameEvents,
    private readonly maxMessage: number,
    private readonly peer: "upstream" | "caller" = "upstream",
  ) {}

  get paused(): boolean {
    return this.#paused;
  }

  /** Stops delivering after the current message; bytes pushed meanwhile are kept. */
  pause(): void {
    this.#paused = true;
  }

  /** Delivers what was kept (which may pause the reader again). */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.push(new Uint8Array(0));
  }

  push(chunk: Uint8Array): void {
    if (this.#ended) return;
    const pending = this.#pending;
    if (chunk.byteLength) pending.push(chunk);
    while (pending.length && !this.#paused && !this.#ended) {
      const partial = this.#partial;
      if (partial) {
        const c = pending[0]!;
        const take = Math.min(c.byteLength, partial.length - partial.received);
        partial.chunks.push(take === c.byteLength ? c : c.subarray(0, take));
        partial.received += take;
        if (take === c.byteLength) pending.shift();
        else pending[0] = c.subarray(take);
        if (partial.received < partial.length) continue;
        this.#partial = undefined;
        const payload = concatBytes(partial.chunks, partial.length);
        if (partial.mask) applyMask(payload, partial.mask);
        this.#frame(partial.fin, partial.opcode, payload);
        continue;
      }
      // A header split over chunks: join the first ones, enough for any header.
      if (pending[0]!.byteLength < MAX_HEADER && pending.length > 1) {
        let n = 0;
        let bytes = 0;
        while (n < pending.length && bytes < MAX_HEADER) bytes += pending[n++]!.byteLength;
        pending.splice(0, n, concatBytes(pending.slice(0, n), bytes));
      }
      const b = pending[0]!;
      if (b.byteLength < 2) return;
      const fin = (b[0]! & 0x80) !== 0;
      const opcode = b[0]! & 0x0f;
      const masked = (b[1]! & 0x80) !== 0;
      if (masked !== (this.peer === "caller")) {
        this.#fail(`the ${this.peer} sent ${masked ? "a masked" : "an unmasked"} frame`);
        return;
      }
      let length = b[1]! & 0x7f;
      let at = 2;
      if (length === 126) {
        if (b.byteLength < 4) return;
        length = (b[2]! << 8) | b[3]!;
        at = 4;
      } else if (length === 127) {
        if (b.byteLength < 10) return;
        const view = new DataView(b.buffer, b.byteOffset, 10);
        length = view.getUint32(2) * 2 ** 32 + view.getUint32(6);
        at = 10;
      }
      if (length > this.maxMessage) {
        this.#fail(`the ${this.peer} sent a frame of ${length} bytes`);
        return;
      }
      if (masked && b.byteLength < at + 4) return;
      const mask = masked ? b.slice(at, at + 4) : undefined;
      if (masked) at += 4;
      if (b.byteLength >= at + length) {
        // The whole frame is in this chunk: its payload is copied out (a fresh, aligned buffer).
        const payload = b.slice(at, at + length);
        if (b.byteLength === at + length) pending.shift();
        else pending[0] = b.subarray(at + length);
        if (mask) applyMask(payload, mask);
        this.#frame(fin, opcode, payload);
        continue;
      }
      this.#partial = { fin, opcode, mask, length, chunks: [], received: 0 };
      pending[0] = b.subarray(at);
    }
  }

  #frame(fin: boolean, opcode: number, payload: Uint8Array): void {
    if (opcode === OP.ping) {
      this.events.ping(payload);
      return;
    }
    if (opcode === OP.pong) return;
    if (opcode === OP.close) {
      const code = payload.byteLength >= 2 ? (payload[0]! << 8) | payload[1]! : undefined;
      this.#ended = true;
      this.events.close(code, payload.byteLength > 2 ? this.#decoder.decode(payload.subarray(2)) : "");
      return;
    }
    if (opcode !== OP.continuation) {
      if (this.#fragments.length) {
        this.#fail(`the ${this.peer} started a message inside another`);
        return;
      }
      this.#fragmentOp = opcode;
    } else if (!this.#fragments.length) {
      this.#fail(`the ${this.peer} sent a continuation without a message`);
      return;
    }
    this.#fragments.push(payload);
    this.#fragmentBytes += payload.byteLength;
    if (this.#fragmentBytes > this.maxMessage) {
      this.#fail(`the ${this.peer} sent a message over ${this.maxMessage} bytes`);
      return;
    }
    if (!fin) return;
    const whole = this.#fragments.length === 1 ? this.#fragments[0]! : concatBytes(this.#fragments);
    this.#fragments = [];
    this.#fragmentBytes = 0;
    this.events.message(this.#fragmentOp === OP.text ? this.#decoder.decode(whole) : whole);
  }

  #fail(message: string): void {
    this.#ended = true;
    this.#pending = [];
    this.#partial = undefined;
    this.events.error(message);
  }
}

/** One scratch word for applyMask: the mask's 4 bytes read as an Int32 (no allocation per frame). */
const MASK_BYTES = new Uint8Array(4);
const MASK_WORD = new Int32Array(MASK_BYTES.buffer);

/**
 * XORs `bytes` in place with the 4-byte `mask` (RFC 6455 §5.3): a 32-bit word at a time where
 * `bytes` starts on a 4-byte boundary (frames this module builds or copies out), else byte by byte.
 */
function applyMask(bytes: Uint8Array, mask: Uint8Array): void {
  const length = bytes.byteLength;
  let i = 0;
  if ((bytes.byteOffset & 3) === 0 && length >= 16) {
    // The mask's bytes as one word in the platform's byte order, so memory order is kept.
    for (let b = 0; b < 4; b++) MASK_BYTES[b] = mask[b]!;
    const word = MASK_WORD[0]!;
    const words = new Int32Array(bytes.buffer, bytes.byteOffset, length >>> 2);
    for (let w = 0; w < words.length; w++) words[w]! ^= word;
    i = words.length << 2;
  }
  for (; i < length; i++) bytes[i]! ^= mask[i & 3]!;
}
