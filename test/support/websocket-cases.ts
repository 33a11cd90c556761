/**
 * What the WebSocket suites of the plain listener (test/integration/websocket.test.ts) and of the
 * mTLS listener (websocket-mtls.test.ts) share: the echo WebSocket upstream, and the cases every
 * listener passes, declared once for a given listener.
 */
import { expect, it } from "bun:test";

/** Backpressure bursts: BURST_COUNT binary messages of BURST_SIZE bytes, numbered in their first 4 bytes. */
const BURST_SIZE = 64 * 1024;
export const BURST_COUNT = 320;
function numbered(i: number): Uint8Array<ArrayBuffer> {
  const m = new Uint8Array(BURST_SIZE);
  new DataView(m.buffer).setUint32(0, i);
  return m;
}

/**
 * The timeout of a case that moves tens of MiB through the relay and back through this test
 * process's own client and upstream: 3–8 s with the 2 cores at load 13–17, so most of it is
 * waiting for a CPU. Generous but bounded; a relay that closes early fails at once (nextMessage).
 */
export const BULK_TRANSFER_TIMEOUT_MS = 60_000;

export interface WebSocketUpstream {
  readonly port: number;
  /** Handshakes that reached it. */
  readonly upgrades: number;
  stop(): void;
}

/**
 * A real echo WebSocket upstream (Bun.serve). Text and binary are echoed, except: `whoami` answers
 * the handshake's `authorization` and path as JSON; `close-4000` closes with 4000 "bye"; `burst`
 * sends BURST_COUNT numbered messages at once; `read-slowly` stops reading for 1.5 s; `received`
 * answers how many numbered messages arrived in order. A path ending in `/refuse` gets a 403.
 */
export function startWebSocketUpstream(): WebSocketUpstream {
  let upgrades = 0;
  const server = Bun.serve<{ authorization: string | null; path: string; received?: number }>({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req, srv) {
      const url = new URL(req.url);
      if (url.pathname.endsWith("/refuse")) return Response.json({ message: "no sockets here" }, { status: 403 });
      upgrades++;
      if (srv.upgrade(req, { data: { authorization: req.headers.get("authorization"), path: url.pathname } })) return undefined;
      return new Response("expected a WebSocket", { status: 400 });
    },
    websocket: {
      maxPayloadLength: 32 * 1024 * 1024,
      backpressureLimit: 64 * 1024 * 1024,
      message(ws, message) {
        const data = ws.data;
        if (typeof message !== "string" && message.byteLength === BURST_SIZE) {
          data.received = (data.received ?? 0) + (new DataView(message.buffer, message.byteOffset).getUint32(0) === (data.received ?? 0) ? 1 : 0);
          return;
        }
        if (message === "close-4000") ws.close(4000, "bye");
        else if (message === "whoami") ws.send(JSON.stringify(ws.data));
        else if (message === "burst") for (let i = 0; i < BURST_COUNT; i++) ws.send(numbered(i));
        else if (message === "read-slowly") {
          // A slow reader: nothing is read for a while, then everything.
          ws.pause();
          setTimeout(() => ws.resume(), 1500);
        } else if (message === "received") ws.send(String(data.received ?? 0));
        else ws.send(message);
      },
    },
  });
  return {
    port: server.port!,
    get upgrades() {
      return upgrades;
    },
    stop: () => server.stop(true),
  };
}

/** The `ws-echo` service in front of `upstream`, and one route on it per name: `[path, protocols]`. */
export function echoRoutes(upstream: WebSocketUpstream, routes: Record<string, readonly [string, readonly string[]]>): string {
  const service = `[[services]]\nname = "ws-echo"\nurl = "http://127.0.0.1:${upstream.port}/socket"\nread_timeout = 5000\n`;
  return Object.entries(routes).reduce(
    (toml, [name, [path, protocols]]) =>
      `${toml}\n[[routes]]\nname = "${name}"\nservice = "ws-echo"\npaths = ["${path}"]\nprotocols = ${JSON.stringify(protocols)}\n`,
    service,
  );
}

/** A gateway listener with a bearer-protected WebSocket route in front of the echo upstream. */
export interface WebSocketListener {
  readonly upstream: WebSocketUpstream;
  /** A token the route accepts. */
  token(): Promise<string>;
  /** Opens a WebSocket on `path` with the token; resolves once open. */
  open(path: string, bearer: string): Promise<WebSocket>;
  /** The status line of the gateway's answer to a raw opening handshake. */
  handshakeStatus(path: string, headers?: Record<string, string>): Promise<string>;
}

/** The next message; a close before it fails the case at once (e.g. the relay's idle close) instead of at the case's timeout. */
export function nextMessage(ws: WebSocket): Promise<string | ArrayBuffer> {
  return new Promise((resolve, reject) => {
    ws.addEventListener("message", (e) => resolve(e.data), { once: true });
    ws.addEventListener("close", (e) => reject(new Error(`the WebSocket closed with ${e.code} "${e.reason}" before a message came`)), { once: true });
  });
}

/** A handshake without a valid token is answered 401 and never reaches the upstream. */
export async function expectRefusedWithoutToken(listener: WebSocketListener, path: string): Promise<void> {
  const before = listener.upstream.upgrades;
  expect(await listener.handshakeStatus(path)).toBe("HTTP/1.1 401 Unauthorized");
  expect(await listener.handshakeStatus(path, { authorization: "Bearer not-a-token" })).toBe("HTTP/1.1 401 Unauthorized");
  expect(listener.upstream.upgrades).toBe(before);
}

/** `count` numbered messages sent at once while the upstream reads slowly all reach it, in order. */
export async function expectSlowUpstreamToGetAll(listener: WebSocketListener, path: string, count: number): Promise<void> {
  const ws = await listener.open(path, await listener.token());
  ws.send("read-slowly");
  for (let i = 0; i < count; i++) ws.send(numbered(i));
  const reply = nextMessage(ws);
  ws.send("received");
  expect(await reply).toBe(String(count));
  ws.close();
}

/**
 * The cases of an open WebSocket, for the listener `of` answers (called when a case runs, after
 * the suite's beforeAll), on its route at `path`.
 */
export function relayCases(path: string, of: () => WebSocketListener): void {
  it("echoes 100 messages in order", async () => {
    const listener = of();
    const ws = await listener.open(path, await listener.token());
    const received: string[] = [];
    const done = new Promise<void>((resolve) => {
      ws.onmessage = (e) => {
        received.push(String(e.data));
        if (received.length === 100) resolve();
      };
    });
    for (let i = 0; i < 100; i++) ws.send(`message ${i}`);
    await done;
    expect(received).toEqual(Array.from({ length: 100 }, (_, i) => `message ${i}`));
    ws.close();
  });

  it(
    "relays a 10 MB message both ways intact",
    async () => {
      const listener = of();
      const ws = await listener.open(path, await listener.token());
      const big = new Uint8Array(10 * 1024 * 1024);
      for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
      const reply = nextMessage(ws);
      ws.send(big);
      const echoed = new Uint8Array((await reply) as ArrayBuffer);
      expect(echoed.length).toBe(big.length);
      expect(Bun.hash(echoed)).toBe(Bun.hash(big));
      ws.close();
    },
    BULK_TRANSFER_TIMEOUT_MS,
  );

  it("passes the upstream's close code through", async () => {
    const listener = of();
    const ws = await listener.open(path, await listener.token());
    const closed = new Promise<CloseEvent>((resolve) => (ws.onclose = resolve));
    ws.send("close-4000");
    const event = await closed;
    expect(event.code).toBe(4000);
    expect(event.reason).toBe("bye");
  });
}
