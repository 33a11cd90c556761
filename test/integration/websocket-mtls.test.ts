/**
 * WebSocket on the mTLS listener (the node:http listener, on Bun and on Deno): a `wss` route whose
 * openid-connect plugin wants a bearer token, one whose token must be bound to the caller's client
 * certificate (RFC 8705), a real echo WebSocket upstream and the real IdP over mTLS. The plugins
 * run on the opening handshake before any 101; then frames are relayed as on the plain listener.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ensureCerts } from "../support/certs.ts";
import { startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { SERVICE_SECRET, startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { handshakeRequest, statusLineOf } from "../support/raw-http.ts";
import { tlsServerConfig } from "../support/tls-gateway.ts";

let certs: string;
let idp: IdpProcess;
let gw: GatewayProcess;
let upstream: ReturnType<typeof Bun.serve>;
let upgrades = 0;
const pem = (name: string) => readFileSync(join(certs, name), "utf8");
const JOHN_DOE = () => ({ cert: pem("client.crt"), key: pem("client.key") });

beforeAll(async () => {
  certs = ensureCerts();
  upstream = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req, srv) {
      upgrades++;
      if (srv.upgrade(req, { data: { authorization: req.headers.get("authorization") } })) return undefined;
      return new Response("expected a WebSocket", { status: 400 });
    },
    websocket: {
      maxPayloadLength: 32 * 1024 * 1024,
      message(ws, message) {
        const data = ws.data as { received?: number };
        if (typeof message !== "string" && message.byteLength === 64 * 1024) {
          data.received = (data.received ?? 0) + 1;
          return;
        }
        if (message === "read-slowly") {
          ws.pause();
          setTimeout(() => ws.resume(), 1500);
          return;
        }
        if (message === "received") return void ws.send(String(data.received ?? 0));
        if (message === "close-4000") ws.close(4000, "bye");
        else if (message === "whoami") ws.send(JSON.stringify(ws.data));
        else ws.send(message);
      },
    },
  });
  idp = await startIdpProcess({ devTls: true });
  const plugin = (route: string, extra = "") =>
    `[[plugins]]\nname = "openid-connect"\nroute = "${route}"\n[plugins.config]\nissuer = "${idp.issuer}"\nauth_methods = ["bearer"]\n${extra}\n`;
  gw = await startGateway({
    config: `${tlsServerConfig({ server: `trusted_certificates = ["${join(certs, "ca.crt")}"]\nshutdown_timeout = 2000` })}
[[services]]
name = "ws-echo"
url = "http://127.0.0.1:${upstream.port}/socket"
read_timeout = 5000

[[routes]]
name = "wss"
service = "ws-echo"
paths = ["/wss"]
protocols = ["https", "wss"]

[[routes]]
name = "wss-bound"
service = "ws-echo"
paths = ["/bound"]
protocols = ["https", "wss"]

${plugin("wss")}
${plugin("wss-bound", 'proof_of_possession_mtls = "strict"')}`,
  });
}, 30_000);

afterAll(async () => {
  await gw?.stop();
  await idp?.stop();
  upstream?.stop(true);
});

async function token(clientId: string, secret: string, clientCert?: { cert: string; key: string }): Promise<string> {
  return (await idp.token(clientId, secret, { clientCert })).access_token;
}

/** The status line of the gateway's answer to an opening handshake over TLS (optionally with a client certificate). */
const handshakeStatus = (path: string, headers: Record<string, string>, clientCert?: { cert: string; key: string }) =>
  statusLineOf({ port: gw.ports.proxyTls, tls: { ca: pem("ca.crt"), ...clientCert } }, handshakeRequest(path, headers));

/** A `wss://` WebSocket through the gateway with the JohnDoe client certificate; resolves once open. */
function open(path: string, bearer: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://localhost:${gw.ports.proxyTls}${path}`, {
      headers: { authorization: `Bearer ${bearer}` },
      tls: { ca: pem("ca.crt"), ...JOHN_DOE() },
    } as never);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error("the WebSocket did not open"));
  });
}

function nextMessage(ws: WebSocket): Promise<string | ArrayBuffer> {
  return new Promise((resolve) => ws.addEventListener("message", (e) => resolve(e.data), { once: true }));
}

describe("a WebSocket on the mTLS listener (a wss route with client_ca)", () => {
  it("answers a handshake without a valid token with 401 and never reaches the upstream", async () => {
    const before = upgrades;
    expect(await handshakeStatus("/wss", {}, JOHN_DOE())).toBe("HTTP/1.1 401 Unauthorized");
    expect(await handshakeStatus("/wss", { authorization: "Bearer not-a-token" }, JOHN_DOE())).toBe("HTTP/1.1 401 Unauthorized");
    expect(upgrades).toBe(before);
  });

  it("answers a handshake with a valid token with 101 and hands the upstream the token", async () => {
    const access = await token("service", SERVICE_SECRET);
    expect(await handshakeStatus("/wss", { authorization: `Bearer ${access}` }, JOHN_DOE())).toBe("HTTP/1.1 101 Switching Protocols");
    const ws = await open("/wss", access);
    const reply = nextMessage(ws);
    ws.send("whoami");
    expect(JSON.parse(String(await reply))).toEqual({ authorization: `Bearer ${access}` });
    ws.close();
  });

  it("echoes 100 messages in order", async () => {
    const ws = await open("/wss", await token("service", SERVICE_SECRET));
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
    const ws = await open("/wss", await token("service", SERVICE_SECRET));
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
    const ws = await open("/wss", await token("service", SERVICE_SECRET));
    const closed = new Promise<CloseEvent>((resolve) => (ws.onclose = resolve));
    ws.send("close-4000");
    const event = await closed;
    expect(event.code).toBe(4000);
    expect(event.reason).toBe("bye");
  });

  it("passes the caller's close code to the upstream and closes cleanly", async () => {
    const ws = await open("/wss", await token("service", SERVICE_SECRET));
    const closed = new Promise<CloseEvent>((resolve) => (ws.onclose = resolve));
    ws.close(4001, "done");
    const event = await closed;
    expect(event.code).toBe(4001);
  });

  it("switches protocols for a certificate-bound token only with the certificate it is bound to", async () => {
    const bound = await token("cert-bound", "cert-bound-secret", JOHN_DOE());
    expect(await handshakeStatus("/bound", { authorization: `Bearer ${bound}` })).toBe("HTTP/1.1 401 Unauthorized");
    expect(
      await handshakeStatus("/bound", { authorization: `Bearer ${bound}` }, { cert: pem("other-client.crt"), key: pem("other-client.key") }),
    ).toBe("HTTP/1.1 401 Unauthorized");
    expect(await handshakeStatus("/bound", { authorization: `Bearer ${bound}` }, JOHN_DOE())).toBe("HTTP/1.1 101 Switching Protocols");
    const ws = await open("/bound", bound);
    const reply = nextMessage(ws);
    ws.send("hello");
    expect(await reply).toBe("hello");
    ws.close();
  });

  it("holds a fast caller back while the upstream reads slowly (40 MiB), every message delivered", async () => {
    const ws = await open("/wss", await token("service", SERVICE_SECRET));
    ws.send("read-slowly");
    const message = new Uint8Array(64 * 1024);
    for (let i = 0; i < 640; i++) ws.send(message);
    const reply = nextMessage(ws);
    ws.send("received");
    expect(await reply).toBe("640");
    ws.close();
  }, 30_000);

  it("refuses a handshake without Sec-WebSocket-Key with 400", async () => {
    const status = await statusLineOf(
      { port: gw.ports.proxyTls, tls: { ca: pem("ca.crt") } },
      "GET /wss HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    expect(status).toBe("HTTP/1.1 400 Bad Request");
  });
});
