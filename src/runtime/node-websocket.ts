/**
 * WebSocket upgrades on the node:http listener (mTLS, and every listener on Deno): node hands
 * the handshake over as an `upgrade` event with the raw socket, so the server side of RFC 6455 is
 * ours — the 101 answer, unmasking the caller's frames, unmasked frames back (lib/websocket-frames.ts).
 */
import { nodeCrypto } from "./builtins.ts";
import type * as net from "node:net";
import { encodeClose, encodeFrame, encodeMessage, FrameReader, OP } from "../lib/websocket-frames.ts";
import { WEBSOCKET_MAX_MESSAGE, type CallerWebSocket, type WebSocketSession } from "./types.ts";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** RFC 6455 §7.4.1: a protocol error, and a message too big to process. */
const PROTOCOL_ERROR = 1002;
const TOO_BIG = 1009;
/** How long a closing handshake may take before the socket is dropped. */
const CLOSE_WAIT_MS = 1000;

/** Returned by the upgrade function: the listener has answered 101 itself and writes nothing. */
export const NODE_UPGRADED = new Response(null, { status: 200 });

/** A valid opening handshake (RFC 6455 §4.2.1): its key, or undefined (the caller gets a 400). */
export function handshakeKey(method: string | undefined, headers: Headers): string | undefined {
  const key = headers.get("sec-websocket-key");
  if (method !== "GET" || headers.get("sec-websocket-version") !== "13" || !key) return undefined;
  // 16 random bytes, base64: 24 characters ending in "==".
  return /^[A-Za-z0-9+/]{22}==$/.test(key.trim()) ? key.trim() : undefined;
}

/**
 * The `ConnInfo.upgrade` of one handshake on `socket`: writes the 101 and relays frames to and
 * from `session`. `head` holds bytes that came after the handshake's headers.
 */
export function nodeUpgrade(socket: net.Socket, key: string, head: Uint8Array, onEnd: () => void) {
  return (session: WebSocketSession, options: { readonly protocol?: string }): Response => {
    const accept = nodeCrypto()
      .createHash("sha1")
      .update(key + GUID)
      .digest("base64");
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n` +
        (options.protocol ? `sec-websocket-protocol: ${options.protocol}\r\n` : "") +
        "\r\n",
    );
    socket.setNoDelay(true);
    let closeSent = false;
    let reported = false;
    const report = (code: number, reason: string) => {
      if (reported) return;
      reported = true;
      session.close(code, reason);
    };
    const closeWith = (code?: number, reason?: string) => {
      if (closeSent) return;
      closeSent = true;
      if (!socket.destroyed) socket.write(encodeClose(code, reason, false));
      socket.end();
      setTimeout(() => socket.destroy(), CLOSE_WAIT_MS).unref?.();
    };
    const caller: CallerWebSocket = {
      send: (data) => (closeSent || socket.destroyed ? true : socket.write(encodeMessage(data, false))),
      close: (code, reason) => closeWith(code, reason),
      // The reader stops too: one chunk can carry many messages (Deno's TLS socket hands over megabytes at once).
      pause: () => {
        reader.pause();
        socket.pause();
      },
      resume: () => {
        reader.resume();
        if (!reader.paused) socket.resume();
      },
    };
    const reader = new FrameReader(
      {
        message: (data) => session.message(data),
        ping: (payload) => {
          if (!closeSent) socket.write(encodeFrame(OP.pong, payload, false));
        },
        close: (code, reason) => {
          // The caller started the closing handshake: answer with its code, then report it.
          closeWith(code, reason);
          report(code ?? 1005, reason);
        },
        error: (message) => {
          const code = message.includes("bytes") ? TOO_BIG : PROTOCOL_ERROR;
          closeWith(code, code === TOO_BIG ? "message too big" : "protocol error");
          report(code, message);
        },
      },
      WEBSOCKET_MAX_MESSAGE,
      "caller",
    );
    socket.on("data", (chunk: Uint8Array) => {
      session.activity();
      reader.push(chunk);
    });
    socket.on("drain", () => session.drain());
    socket.on("close", () => {
      report(1006, "");
      onEnd();
    });
    session.open(caller);
    if (head.byteLength) reader.push(head);
    return NODE_UPGRADED;
  };
}
