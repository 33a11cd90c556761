/**
 * Raw HTTP/1.x over TCP or TLS for the listener suites: the bytes are sent exactly as given
 * (malformed on purpose), and what comes back is split into responses.
 */
import * as net from "node:net";
import * as tls from "node:tls";

export interface RawTarget {
  readonly port: number;
  /** TLS (the mTLS listener): the CA to trust and an optional client certificate. */
  readonly tls?: { readonly ca: string; readonly cert?: string; readonly key?: string };
}

export interface RawResult {
  /** Status codes of the responses received, in order. */
  readonly statuses: number[];
  readonly text: string;
  /** True when the server closed the connection before `timeoutMs`. */
  readonly closed: boolean;
}

export function connect(target: RawTarget, onReady: (socket: net.Socket) => void): net.Socket {
  if (target.tls) {
    const socket: tls.TLSSocket = tls.connect(
      {
        host: "127.0.0.1",
        port: target.port,
        servername: "localhost",
        ca: target.tls.ca,
        ...(target.tls.cert ? { cert: target.tls.cert, key: target.tls.key } : {}),
      },
      () => onReady(socket),
    );
    return socket;
  }
  const socket = net.connect({ host: "127.0.0.1", port: target.port }, () => onReady(socket));
  return socket;
}

/** Sends `bytes`, reads until the server closes or `timeoutMs` passes. */
export function rawExchange(target: RawTarget, bytes: string | string[], timeoutMs = 3000): Promise<RawResult> {
  return new Promise((done) => {
    let text = "";
    let finished = false;
    const finish = (closed: boolean) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      done({ statuses: [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1])), text, closed });
    };
    const socket = connect(target, (s) => {
      const parts = Array.isArray(bytes) ? bytes : [bytes];
      for (const p of parts) s.write(p);
    });
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => (text += d));
    socket.on("error", () => finish(true));
    socket.on("close", () => finish(true));
    const timer = setTimeout(() => finish(false), timeoutMs);
  });
}

/** Sends `bytes` and resolves with the answer's first line (its status line), closing the connection then. */
export function statusLineOf(target: RawTarget, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(target, (s) => s.write(bytes));
    let text = "";
    socket.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      if (text.includes("\r\n")) {
        socket.destroy();
        resolve(text.slice(0, text.indexOf("\r\n")));
      }
    });
    socket.on("error", reject);
  });
}

/** A WebSocket opening handshake (RFC 6455 §4.1) for `path`, with more `headers` after the handshake's own. */
export function handshakeRequest(path: string, headers: Record<string, string> = {}): string {
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  return `GET ${path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`;
}
