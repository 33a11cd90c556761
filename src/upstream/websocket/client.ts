/**
 * The gateway's WebSocket client towards the upstream, over a raw connection: the opening
 * handshake is ours (so the caller's headers, as the plugins left them, go upstream, and a
 * refusal comes back as the upstream's HTTP answer), then frames (lib/websocket-frames.ts).
 */
import { UpstreamTimeoutError, UpstreamUnavailableError } from "../../errors.ts";
import type { RawSocket, SocketEvents } from "../../runtime/types.ts";
import { FrameReader, encodeClose, encodeFrame, encodeMessage, OP } from "../../lib/websocket-frames.ts";
import { concatBytes } from "../../lib/bytes.ts";
import { HOP_BY_HOP } from "../../lib/hop-by-hop.ts";

const MAX_HEAD = 64 * 1024;
const MAX_REFUSAL_BODY = 64 * 1024;
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Headers of the caller's handshake that describe its own connection or an extension we do not relay. */
const NOT_FORWARDED = new Set([
  "host",
  "connection",
  "upgrade",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-extensions",
  "content-length",
  "transfer-encoding",
  "keep-alive",
  "te",
  "trailer",
  "proxy-connection",
]);

export interface WebSocketRequest {
  /** Path and query. */
  readonly target: string;
  readonly host: string;
  readonly headers: Headers;
}

export type Connector = (events: SocketEvents) => Promise<RawSocket>;

export type HandshakeResult =
  | { readonly kind: "open"; readonly socket: UpstreamWebSocket; readonly protocol: string | undefined }
  | { readonly kind: "refused"; readonly response: Response };

/** The upstream end of a relayed WebSocket. Handlers are set by the relay once the caller is upgraded. */
export class UpstreamWebSocket implements SocketEvents {
  socket: RawSocket | undefined;
  onMessage: (data: string | Uint8Array) => void = () => {};
  onClose: (code: number | undefined, reason: string) => void = () => {};
  /** The connection ended without a close frame (or broke the protocol). */
  onEnd: (why: string) => void = () => {};
  onDrain: () => void = () => {};
  /** Bytes arrived after the handshake (a big message is read in many). */
  onActivity: () => void = () => {};
  #head: Uint8Array[] = [];
  #headBytes = 0;
  #handshake: ((bytes: Uint8Array | Error) => void) | undefined;
  #reader: FrameReader;
  #early: Uint8Array[] = [];
  #open = false;
  #ended = false;

  constructor(maxMessage: number) {
    this.#reader = new FrameReader(
      {
        message: (data) => this.onMessage(data),
        ping: (payload) => this.socket?.write(encodeFrame(OP.pong, payload)),
        close: (code, reason) => {
          this.#ended = true;
          this.onClose(code, reason);
        },
        error: (message) => {
          this.#ended = true;
          this.socket?.destroy();
          this.onEnd(message);
        },
      },
      maxMessage,
    );
  }

  /** Resolves with the bytes of the response head and what followed it. */
  waitHead(): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      this.#handshake = (r) => (r instanceof Error ? reject(r) : resolve(r));
    });
  }

  /** Starts delivering frames (after the caller was upgraded); bytes that came early go first. */
  start(): void {
    this.#open = true;
    const early = this.#early;
    this.#early = [];
    for (const chunk of early) this.#reader.push(chunk);
  }

  data(chunk: Uint8Array): void {
    if (this.#handshake) {
      this.#head.push(chunk);
      this.#headBytes += chunk.byteLength;
      const all = this.#head.length === 1 ? this.#head[0]! : concatBytes(this.#head);
      this.#head = [all];
      if (indexOfHeadEnd(all) >= 0 || this.#headBytes > MAX_HEAD) {
        const done = this.#handshake;
        this.#handshake = undefined;
        done(all);
      }
      return;
    }
    if (!this.#open) {
      this.#early.push(chunk);
      return;
    }
    this.onActivity();
    this.#reader.push(chunk);
  }

  drain(): void {
    this.onDrain();
  }

  close(error?: Error): void {
    if (this.#handshake) {
      const done = this.#handshake;
      this.#handshake = undefined;
      done(error ?? new Error("the upstream closed the connection during the WebSocket handshake"));
      return;
    }
    if (!this.#ended) {
      this.#ended = true;
      this.onEnd(error?.message ?? "the upstream closed the connection");
    }
  }

  send(data: string | Uint8Array): boolean {
    return this.socket?.write(encodeMessage(data)) ?? false;
  }

  closeWith(code?: number, reason?: string): void {
    this.socket?.write(encodeClose(code, reason));
    // The upstream answers with its own close frame; the connection ends soon after.
    setTimeout(() => this.socket?.destroy(), 1000);
  }

  /** Stops reading the upstream: frames already read wait in the reader, the socket stops too. */
  pause(): void {
    this.#reader.pause();
    this.socket?.pause();
  }
  resume(): void {
    this.#reader.resume();
    // Delivering what waited may have filled the caller again.
    if (!this.#reader.paused) this.socket?.resume();
  }
  destroy(): void {
    this.#ended = true;
    this.socket?.destroy();
  }
}

function indexOfHeadEnd(bytes: Uint8Array): number {
  for (let i = 3; i < bytes.length; i++) if (bytes[i] === 10 && bytes[i - 1] === 13 && bytes[i - 2] === 10 && bytes[i - 3] === 13) return i + 1;
  return -1;
}

function parseHead(text: string): { status: number; statusText: string; headers: Headers } | undefined {
  const lines = text.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0] ?? "");
  if (!m) return undefined;
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    try {
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    } catch {
      return undefined;
    }
  }
  return { status: Number(m[1]), statusText: m[2] ?? "", headers };
}

async function acceptFor(key: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-1", encoder.encode(key + GUID)));
  return btoa(String.fromCharCode(...digest));
}

/**
 * Connects and sends the opening handshake; the upstream's 101 gives an open socket, any other
 * answer the refusal as an HTTP response (its body up to 64 KiB). `readTimeoutMs` bounds the wait.
 */
export async function openUpstreamWebSocket(
  connect: Connector,
  req: WebSocketRequest,
  readTimeoutMs: number,
  maxMessage: number,
): Promise<HandshakeResult> {
  const ws = new UpstreamWebSocket(maxMessage);
  const head = ws.waitHead();
  const socket = await connect(ws);
  ws.socket = socket;
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
  let text = `GET ${req.target} HTTP/1.1\r\nhost: ${req.host}\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: ${key}\r\n`;
  req.headers.forEach((value, name) => {
    if (!NOT_FORWARDED.has(name)) text += `${name}: ${value}\r\n`;
  });
  socket.write(`${text}\r\n`);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new UpstreamTimeoutError(`the upstream timed out (read_timeout = ${readTimeoutMs} ms waiting for the WebSocket handshake)`)),
      readTimeoutMs,
    );
  });
  let bytes: Uint8Array;
  try {
    bytes = await Promise.race([head, timeout]);
  } catch (error) {
    socket.destroy();
    if (error instanceof UpstreamTimeoutError) throw error;
    throw new UpstreamUnavailableError(`the upstream's WebSocket handshake failed: ${(error as Error).message}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
  const end = indexOfHeadEnd(bytes);
  const parsed = end > 0 ? parseHead(decoder.decode(bytes.subarray(0, end - 4))) : undefined;
  if (!parsed) {
    socket.destroy();
    throw new UpstreamUnavailableError("the upstream's answer to the WebSocket handshake is not HTTP/1.1");
  }
  const rest = bytes.subarray(end);
  if (parsed.status === 101) {
    if (parsed.headers.get("sec-websocket-accept") !== (await acceptFor(key))) {
      socket.destroy();
      throw new UpstreamUnavailableError("the upstream's WebSocket handshake has a wrong Sec-WebSocket-Accept");
    }
    if (rest.byteLength) ws.data(rest);
    return { kind: "open", socket: ws, protocol: parsed.headers.get("sec-websocket-protocol") ?? undefined };
  }
  // A refusal: the body as far as Content-Length says (bounded), then the connection is dropped.
  const length = Number(parsed.headers.get("content-length") ?? "0");
  let body = rest;
  if (Number.isFinite(length) && length > body.byteLength && length <= MAX_REFUSAL_BODY) {
    const more: Uint8Array[] = [body];
    let have = body.byteLength;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, readTimeoutMs);
      ws.data = (chunk) => {
        more.push(chunk);
        have += chunk.byteLength;
        if (have >= length) {
          clearTimeout(t);
          resolve();
        }
      };
      ws.close = () => {
        clearTimeout(t);
        resolve();
      };
    });
    body = concatBytes(more);
  }
  socket.destroy();
  // The answer is sent on with its body's own length and without the upstream connection's headers.
  for (const h of [...HOP_BY_HOP, "content-length"]) parsed.headers.delete(h);
  const payload = body.subarray(0, Number.isFinite(length) ? Math.min(length, MAX_REFUSAL_BODY) : 0);
  return {
    kind: "refused",
    response: new Response(parsed.status === 204 || parsed.status === 304 ? null : payload.slice(), {
      status: parsed.status,
      statusText: parsed.statusText,
      headers: parsed.headers,
    }),
  };
}
