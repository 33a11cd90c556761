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
import {
  BULK_TRANSFER_TIMEOUT_MS,
  BURST_COUNT,
  echoRoutes,
  expectRefusedWithoutToken,
  expectSlowUpstreamToGetAll,
  nextMessage,
  relayCases,
  startWebSocketUpstream,
  type WebSocketListener,
  type WebSocketUpstream,
} from "../support/websocket-cases.ts";

let idp: IdpProcess;
let gw: GatewayProcess;
let upstream: WebSocketUpstream;

beforeAll(async () => {
  upstream = startWebSocketUpstream();
  idp = await startIdpProcess();
  gw = await startGateway({
    config: `${serverTable()}
${echoRoutes(upstream, { ws: ["/ws", ["http", "ws"]] })}

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
  upstream?.stop();
});

async function token(): Promise<string> {
  return (await idp.token("service", SERVICE_SECRET)).access_token;
}

/** The plain listener: `ws://`, raw handshakes over TCP. */
const plain: WebSocketListener = {
  get upstream() {
    return upstream;
  },
  token,
  open(path, bearer) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${gw.ports.proxy}${path}`, { headers: { authorization: `Bearer ${bearer}` } } as never);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => resolve(ws);
      ws.onerror = () => reject(new Error("the WebSocket did not open"));
    });
  },
  handshakeStatus: (path, headers = {}) => statusLineOf({ port: gw.ports.proxy }, handshakeRequest(path, headers)),
};

describe("a WebSocket through a bearer-protected route", () => {
  it("answers the handshake without a valid token with 401 and never reaches the upstream", () => expectRefusedWithoutToken(plain, "/ws"));

  it("switches protocols with a valid token and hands the upstream the request as the plugins left it", async () => {
    const access = await token();
    expect(await plain.handshakeStatus("/ws", { authorization: `Bearer ${access}` })).toBe("HTTP/1.1 101 Switching Protocols");
    const ws = await plain.open("/ws", access);
    ws.send("whoami");
    const seen = JSON.parse(String(await nextMessage(ws))) as { authorization: string; path: string };
    expect(seen.path).toBe("/socket");
    expect(seen.authorization).toBe(`Bearer ${access}`);
    ws.close();
  });

  relayCases("/ws", () => plain);

  it("passes the upstream's refusal back as its HTTP answer", async () => {
    expect(await plain.handshakeStatus("/ws/refuse", { authorization: `Bearer ${await token()}` })).toBe("HTTP/1.1 403 Forbidden");
  });
});

describe("WebSocket backpressure", () => {
  it(
    "delivers a 20 MiB burst from the upstream whole and in order to a caller that stops reading for a while",
    async () => {
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
    },
    BULK_TRANSFER_TIMEOUT_MS,
  );

  it(
    "holds a fast caller back while the upstream reads slowly: every message arrives, in order",
    () => expectSlowUpstreamToGetAll(plain, "/ws", 100),
    30_000,
  );

  it(
    "holds back a caller that outruns a slow upstream by 40 MiB: every message arrives",
    () => expectSlowUpstreamToGetAll(plain, "/ws", BURST_COUNT * 2),
    BULK_TRANSFER_TIMEOUT_MS,
  );
});
