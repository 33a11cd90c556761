import { describe, expect, it } from "bun:test";
import { encodeClose, encodeFrame, FrameReader, OP } from "../../../src/lib/websocket-frames.ts";

/** An unmasked frame, as an upstream (a server) sends it. */
function serverFrame(opcode: number, payload: Uint8Array, fin = true): Uint8Array {
  const length = payload.byteLength;
  const head =
    length < 126
      ? [0, length]
      : length < 65536
        ? [0, 126, length >> 8, length & 255]
        : [0, 127, 0, 0, 0, 0, (length >>> 24) & 255, (length >>> 16) & 255, (length >>> 8) & 255, length & 255];
  head[0] = (fin ? 0x80 : 0) | opcode;
  const out = new Uint8Array(head.length + length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

function reader() {
  const got: { messages: (string | Uint8Array)[]; pings: number; close?: [number | undefined, string]; error?: string } = { messages: [], pings: 0 };
  const r = new FrameReader(
    {
      message: (m) => got.messages.push(m),
      ping: () => got.pings++,
      close: (code, reason) => (got.close = [code, reason]),
      error: (e) => (got.error = e),
    },
    1024 * 1024,
  );
  return { r, got };
}

const text = (s: string) => new TextEncoder().encode(s);

describe("WebSocket frames towards the upstream", () => {
  it("masks what the gateway sends, with the length in 7, 16 or 64 bits", () => {
    for (const size of [5, 300, 70_000]) {
      const payload = new Uint8Array(size).fill(7);
      const frame = encodeFrame(OP.binary, payload);
      expect(frame[0]).toBe(0x80 | OP.binary);
      expect(frame[1]! & 0x80).toBe(0x80);
      const at = size < 126 ? 2 : size < 65536 ? 4 : 10;
      const mask = frame.subarray(at, at + 4);
      const unmasked = frame.subarray(at + 4).map((b, i) => b ^ mask[i & 3]!);
      expect(unmasked).toEqual(payload);
    }
  });

  it("masks and unmasks every byte whatever the payload's length and place in its buffer", () => {
    const source = Uint8Array.from({ length: 70_011 }, (_, i) => (i * 31) & 255);
    for (const [offset, size] of [
      [0, 0],
      [1, 15],
      [3, 125],
      [2, 126],
      [1, 4097],
      [3, 65_535],
      [0, 65_536],
      [1, 70_003],
    ] as const) {
      const payload = source.subarray(offset, offset + size);
      const got: Uint8Array[] = [];
      const r = new FrameReader({ message: (m) => got.push(m as Uint8Array), ping: () => {}, close: () => {}, error: () => {} }, 1 << 20, "caller");
      r.push(encodeFrame(OP.binary, payload));
      expect(got[0]).toEqual(payload.slice());
    }
  });

  it("reads frames whatever the chunk boundaries, and joins fragments", () => {
    const { r, got } = reader();
    const bytes = new Uint8Array([
      ...serverFrame(OP.text, text("hel"), false),
      ...serverFrame(OP.continuation, text("lo")),
      ...serverFrame(OP.binary, new Uint8Array(70_000).fill(1)),
    ]);
    for (let i = 0; i < bytes.length; i += 1000) r.push(bytes.subarray(i, i + 1000));
    expect(got.messages[0]).toBe("hello");
    expect((got.messages[1] as Uint8Array).length).toBe(70_000);
  });

  it("reports pings and the close code and reason", () => {
    const { r, got } = reader();
    r.push(serverFrame(OP.ping, text("p")));
    r.push(serverFrame(OP.close, new Uint8Array([0x0f, 0xa0, ...text("bye")])));
    expect(got.pings).toBe(1);
    expect(got.close).toEqual([4000, "bye"]);
  });

  it("refuses a masked frame from the upstream and a message over the limit", () => {
    const masked = reader();
    masked.r.push(encodeFrame(OP.text, text("x")));
    expect(masked.got.error).toContain("masked");
    const big = reader();
    big.r.push(serverFrame(OP.binary, new Uint8Array(2 * 1024 * 1024)).subarray(0, 20));
    expect(big.got.error).toContain("frame of");
  });

  it("never sends a close code a peer may not send", () => {
    expect(encodeClose(1005).length).toBe(2 + 4);
    const close = encodeClose(4000, "bye");
    expect(close.length).toBe(2 + 4 + 2 + 3);
  });
});

describe("WebSocket frames from and to a caller (the gateway as the server)", () => {
  it("unmasks the caller's masked frames, fragments joined", () => {
    const got: (string | Uint8Array)[] = [];
    const r = new FrameReader({ message: (m) => got.push(m), ping: () => {}, close: () => {}, error: () => {} }, 1024 * 1024, "caller");
    const bytes = new Uint8Array([...encodeFrame(OP.text, text("hello")), ...encodeFrame(OP.binary, new Uint8Array(70_000).fill(3))]);
    for (let i = 0; i < bytes.length; i += 777) r.push(bytes.subarray(i, i + 777));
    expect(got[0]).toBe("hello");
    expect(got[1]).toEqual(new Uint8Array(70_000).fill(3));
  });

  it("refuses an unmasked frame from a caller", () => {
    let error = "";
    const r = new FrameReader({ message: () => {}, ping: () => {}, close: () => {}, error: (e) => (error = e) }, 1024, "caller");
    r.push(serverFrame(OP.text, text("hi")));
    expect(error).toBe("the caller sent an unmasked frame");
  });

  it("sends unmasked frames to a caller", () => {
    const frame = encodeFrame(OP.text, text("hi"), false);
    expect([...frame]).toEqual([0x81, 2, ...text("hi")]);
  });
});

describe("a paused frame reader", () => {
  it("stops delivering after the current message, keeps what follows, and delivers it on resume", () => {
    const got: string[] = [];
    const r = new FrameReader(
      {
        message: (m) => {
          got.push(String(m));
          if (got.length === 1) r.pause();
        },
        ping: () => {},
        close: () => {},
        error: () => {},
      },
      1024,
    );
    r.push(new Uint8Array([...serverFrame(OP.text, text("a")), ...serverFrame(OP.text, text("b")), ...serverFrame(OP.text, text("c"))]));
    expect(got).toEqual(["a"]);
    r.push(serverFrame(OP.text, text("d")));
    expect(got).toEqual(["a"]);
    r.resume();
    expect(got).toEqual(["a", "b", "c", "d"]);
    expect(r.paused).toBe(false);
  });
});

describe("a frame reader after the close or a protocol error", () => {
  it("delivers nothing that follows a close frame (RFC 6455 §5.5.1), in the same chunk or a later one", () => {
    const { r, got } = reader();
    r.push(new Uint8Array([...serverFrame(OP.close, new Uint8Array([0x03, 0xe8])), ...serverFrame(OP.text, text("after"))]));
    r.push(serverFrame(OP.text, text("later")));
    r.push(serverFrame(OP.ping, new Uint8Array(0)));
    expect(got.close).toEqual([1000, ""]);
    expect(got.messages).toEqual([]);
    expect(got.pings).toBe(0);
  });

  it("delivers nothing that follows a protocol error (RFC 6455 §7.1.7: the connection is failed)", () => {
    const { r, got } = reader();
    // A new message inside a fragmented one is the error; the continuation after it would complete "ab".
    r.push(
      new Uint8Array([...serverFrame(OP.text, text("a"), false), ...serverFrame(OP.text, text("x")), ...serverFrame(OP.continuation, text("b"))]),
    );
    r.push(serverFrame(OP.text, text("later")));
    expect(got.error).toContain("inside another");
    expect(got.messages).toEqual([]);
  });
});
