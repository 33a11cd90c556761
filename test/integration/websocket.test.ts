/**
 * WebSocket through the gateway: a real echo WebSocket upstream, a route whose openid-connect
 * plugin wants a bearer token from the real IdP, the real gateway (binary, or
 * GATEWAY_RUNTIME=bun|deno). The token is checked on the opening handshake, before any 101.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { connect } from "node:net";
import { encodeFrame, FrameReader, OP } from "../../src/lib/websocket-frames.ts";
import { startGateway, type GatewayProcess, serverTable } from "../support/gateway-process.ts";
import { SERVICE_SECRET, startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { handshakeRequest, statusLineOf } from "../support/raw-http.ts";

/** Backpressure bursts: BURST_COUNT binary messages of BURST_SIZE bytes, numbered in their first 4 bytes. */
const BURST_SIZE = 64 * 1024;
const BURST_COUNT = 320;
function numbered(i: number): Uint8Array<ArrayBuffer> {
  const m = new Uint8Array(BURST_SIZE);
  new DataView(m.buffer).setUint32(0, i);
  return m;
}

let idp: IdpProcess;
let gw: GatewayProcess;
let upstream: ReturnType<typeof Bun.serve>;
let upgrades = 0;

beforeAll(async () => {
  upstream = Bun.serve({
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
        const data = ws.data as { received?: number };
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
  idp = await startIdpProcess();
  gw = await startGateway({
    config: `${serverTable()}
[[services]]
name = "ws-echo"
url = "http://127.0.0.1:${upstream.port}/socket"
read_timeout = 5000

[[routes]]
name = "ws"
service = "ws-echo"
paths = ["/ws"]
protocols = ["http", "ws"]

[[plugins]]
name = "openid-connect"
route = "ws"
[plugins.config]
issuer = "${idp.issuer}"
auth_methods = ["bearer"]
`,
  });
}, 30_000);

afterAll(async () => {
  await gw?.stop();
  await idp?.stop();
  upstream?.stop(true);
});

async function token(): Promise<string> {
  return (await idp.token("service", SERVICE_SECRET)).access_token;
}

/** The status line of the gateway's answer to a raw opening handshake. */
const handshakeStatus = (path: string, headers: Record<string, string> = {}) =>
  statusLineOf({ port: gw.ports.proxy }, handshakeRequest(path, headers));

/** Opens a WebSocket through the gateway; resolves once open. */
function open(path: string, bearer?: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(
      `ws://127.0.0.1:${gw.ports.proxy}${path}`,
      bearer ? ({ headers: { authorization: `Bearer ${bearer}` } } as never) : undefined,
    );
    ws.binaryType = "arraybuffer";
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error("the WebSocket did not open"));
  });
}

function nextMessage(ws: WebSocket): Promise<string | ArrayBuffer> {
  return new Promise((resolve) => ws.addEventListener("message", (e) => resolve(e.data), { once: true }));
}

describe("a WebSocket through a bearer-protected route", () => {
  it("answers the handshake without a valid token with 401 and never reaches the upstream", async () => {
    const before = upgrades;
    expect(await handshakeStatus("/ws")).toBe("HTTP/1.1 401 Unauthorized");
    expect(await handshakeStatus("/ws", { authorization: "Bearer not-a-token" })).toBe("HTTP/1.1 401 Unauthorized");
    expect(upgrades).toBe(before);
  });

  it("switches protocols with a valid token and hands the upstream the request as the plugins left it", async () => {
    const access = await token();
    expect(await handshakeStatus("/ws", { authorization: `Bearer ${access}` })).toBe("HTTP/1.1 101 Switching Protocols");
    const ws = await open("/ws", access);
    ws.send("whoami");
    const seen = JSON.parse(String(await nextMessage(ws))) as { authorization: string; path: string };
    expect(seen.path).toBe("/socket");
    expect(seen.authorization).toBe(`Bearer ${access}`);
    ws.close();
  });

  it("echoes 100 messages in order", async () => {
    const ws = await open("/ws", await token());
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

  it("relays a 10 MB message both ways intact", async () => {
    const ws = await open("/ws", await token());
    const big = new Uint8Array(10 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
    const reply = nextMessage(ws);
    ws.send(big);
    const echoed = new Uint8Array((await reply) as ArrayBuffer);
    expect(echoed.length).toBe(big.length);
    expect(Bun.hash(echoed)).toBe(Bun.hash(big));
    ws.close();
  }, 30_000);

  it("passes the upstream's close code through", async () => {
    const ws = await open("/ws", await token());
    const closed = new Promise<CloseEvent>((resolve) => (ws.onclose = resolve));
    ws.send("close-4000");
    const event = await closed;
    expect(event.code).toBe(4000);
    expect(event.reason).toBe("bye");
  });

  it("passes the upstream's refusal back as its HTTP answer", async () => {
    expect(await handshakeStatus("/ws/refuse", { authorization: `Bearer ${await token()}` })).toBe("HTTP/1.1 403 Forbidden");
  });
});

describe("WebSocket backpressure", () => {
  it("delivers a 20 MiB burst from the upstream whole and in order to a caller that stops reading for a while", async () => {
    const access = await token();
    const numbers: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const socket = connect(gw.ports.proxy, "127.0.0.1", () => {
        socket.write(handshakeRequest("/ws", { Authorization: `Bearer ${access}` }));
      });
      let head = "";
      let upgraded = false;
      const reader = new FrameReader(
        {
          message: (m) => {
            if (typeof m === "string") return;
            numbers.push(new DataView(m.buffer, m.byteOffset).getUint32(0));
            if (numbers.length === BURST_COUNT) {
              socket.destroy();
              resolve();
            }
          },
          ping: () => {},
          close: (code) => reject(new Error(`closed with ${code} after ${numbers.length} messages`)),
          error: reject,
        },
        1024 * 1024,
      );
      socket.on("data", (chunk: Buffer) => {
        if (upgraded) return reader.push(new Uint8Array(chunk));
        head += chunk.toString("latin1");
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        upgraded = true;
        expect(head.slice(0, head.indexOf("\r\n"))).toBe("HTTP/1.1 101 Switching Protocols");
        socket.write(encodeFrame(OP.text, new TextEncoder().encode("burst")));
        // The slow caller: nothing read for 1.5 s while the upstream sends everything at once.
        socket.pause();
        setTimeout(() => socket.resume(), 1500);
      });
      socket.on("error", reject);
      socket.on("close", () => reject(new Error(`the connection closed after ${numbers.length} messages`)));
    });
    expect(numbers).toEqual(Array.from({ length: BURST_COUNT }, (_, i) => i));
  }, 30_000);

  it("holds a fast caller back while the upstream reads slowly: every message arrives, in order", async () => {
    const ws = await open("/ws", await token());
    ws.send("read-slowly");
    const count = 100;
    for (let i = 0; i < count; i++) ws.send(numbered(i));
    const reply = nextMessage(ws);
    ws.send("received");
    expect(await reply).toBe(String(count));
    ws.close();
  }, 30_000);

  it("holds back a caller that outruns a slow upstream by 40 MiB: every message arrives", async () => {
    const ws = await open("/ws", await token());
    ws.send("read-slowly");
    for (let i = 0; i < BURST_COUNT * 2; i++) ws.send(numbered(i));
    const reply = nextMessage(ws);
    ws.send("received");
    expect(await reply).toBe(String(BURST_COUNT * 2));
    ws.close();
  }, 30_000);
});
