/**
 * RFC 6455 framing for the gateway's client side of a WebSocket to the upstream: frames we send
 * are masked (§5.3), frames we read are not; fragmented messages are joined before delivery.
 */
import { concatBytes } from "../../lib/bytes.ts";

export const OP = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

const encoder = new TextEncoder();

/** One masked frame with FIN set. */
export function encodeFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const length = payload.byteLength;
  const headerLength = 2 + (length < 126 ? 0 : length < 65536 ? 2 : 8) + 4;
  const frame = new Uint8Array(headerLength + length);
  frame[0] = 0x80 | opcode;
  let at = 2;
  if (length < 126) frame[1] = 0x80 | length;
  else if (length < 65536) {
    frame[1] = 0x80 | 126;
    frame[2] = length >>> 8;
    frame[3] = length & 0xff;
    at = 4;
  } else {
    frame[1] = 0x80 | 127;
    const view = new DataView(frame.buffer);
    view.setUint32(2, Math.floor(length / 2 ** 32));
    view.setUint32(6, length >>> 0);
    at = 10;
  }
  const mask = crypto.getRandomValues(new Uint8Array(4));
  frame.set(mask, at);
  at += 4;
  const m0 = mask[0]!;
  const m1 = mask[1]!;
  const m2 = mask[2]!;
  const m3 = mask[3]!;
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    frame[at + i] = payload[i]! ^ m0;
    frame[at + i + 1] = payload[i + 1]! ^ m1;
    frame[at + i + 2] = payload[i + 2]! ^ m2;
    frame[at + i + 3] = payload[i + 3]! ^ m3;
  }
  for (; i < length; i++) frame[at + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}

export function encodeMessage(data: string | Uint8Array): Uint8Array {
  return typeof data === "string" ? encodeFrame(OP.text, encoder.encode(data)) : encodeFrame(OP.binary, data);
}

/** A close frame; codes a peer may not send (1005, 1006, 1015, out of range) become an empty close. */
export function encodeClose(code?: number, reason = ""): Uint8Array {
  if (code === undefined || code === 1005 || code === 1006 || code === 1015 || code < 1000 || code > 4999)
    return encodeFrame(OP.close, new Uint8Array(0));
  const text = encoder.encode(reason).subarray(0, 123);
  const payload = new Uint8Array(2 + text.byteLength);
  payload[0] = code >>> 8;
  payload[1] = code & 0xff;
  payload.set(text, 2);
  return encodeFrame(OP.close, payload);
}

export interface FrameEvents {
  message(data: string | Uint8Array): void;
  ping(payload: Uint8Array): void;
  close(code: number | undefined, reason: string): void;
  /** The peer broke the protocol (a masked or oversized frame, a bad fragment). */
  error(message: string): void;
}

/** Reads frames from a byte stream, whatever the chunk boundaries. */
export class FrameReader {
  /** Unparsed bytes, joined only once a whole frame is there (a 10 MB frame arrives in many chunks). */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #needed = 0;
  #fragments: Uint8Array[] = [];
  #fragmentOp = 0;
  #fragmentBytes = 0;
  readonly #decoder = new TextDecoder();

  constructor(
    private readonly events: FrameEvents,
    private readonly maxMessage: number,
  ) {}

  push(chunk: Uint8Array): void {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.byteLength;
    if (this.#pendingBytes < this.#needed) return;
    let b = this.#pending.length === 1 ? this.#pending[0]! : concatBytes(this.#pending);
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#needed = 0;
    const keep = (rest: Uint8Array, needed: number) => {
      if (rest.byteLength) {
        this.#pending = [rest];
        this.#pendingBytes = rest.byteLength;
      }
      this.#needed = needed;
    };
    for (;;) {
      if (b.byteLength < 2) {
        keep(b, 2);
        return;
      }
      const fin = (b[0]! & 0x80) !== 0;
      const opcode = b[0]! & 0x0f;
      if (b[1]! & 0x80) {
        this.events.error("the upstream sent a masked frame");
        return;
      }
      let length = b[1]! & 0x7f;
      let at = 2;
      if (length === 126) {
        if (b.byteLength < 4) {
          keep(b, 4);
          return;
        }
        length = (b[2]! << 8) | b[3]!;
        at = 4;
      } else if (length === 127) {
        if (b.byteLength < 10) {
          keep(b, 10);
          return;
        }
        const view = new DataView(b.buffer, b.byteOffset, 10);
        length = view.getUint32(2) * 2 ** 32 + view.getUint32(6);
        at = 10;
      }
      if (length > this.maxMessage) {
        this.events.error(`the upstream sent a frame of ${length} bytes`);
        return;
      }
      if (b.byteLength < at + length) {
        keep(b, at + length);
        return;
      }
      const payload = b.slice(at, at + length);
      b = b.subarray(at + length);
      this.#frame(fin, opcode, payload);
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
      this.events.close(code, payload.byteLength > 2 ? this.#decoder.decode(payload.subarray(2)) : "");
      return;
    }
    if (opcode !== OP.continuation) {
      if (this.#fragments.length) {
        this.events.error("the upstream started a message inside another");
        return;
      }
      this.#fragmentOp = opcode;
    } else if (!this.#fragments.length) {
      this.events.error("the upstream sent a continuation without a message");
      return;
    }
    this.#fragments.push(payload);
    this.#fragmentBytes += payload.byteLength;
    if (this.#fragmentBytes > this.maxMessage) {
      this.events.error(`the upstream sent a message over ${this.maxMessage} bytes`);
      return;
    }
    if (!fin) return;
    const whole = this.#fragments.length === 1 ? this.#fragments[0]! : concatBytes(this.#fragments);
    this.#fragments = [];
    this.#fragmentBytes = 0;
    this.events.message(this.#fragmentOp === OP.text ? this.#decoder.decode(whole) : whole);
  }
}
