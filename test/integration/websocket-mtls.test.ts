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
import {
  BULK_TRANSFER_TIMEOUT_MS,
  echoRoutes,
  expectRefusedWithoutToken,
  expectSlowUpstreamToGetAll,
  nextMessage,
  relayCases,
  startWebSocketUpstream,
  type WebSocketListener,
  type WebSocketUpstream,
} from "../support/websocket-cases.ts";

let certs: string;
let idp: IdpProcess;
let gw: GatewayProcess;
let upstream: WebSocketUpstream;
const pem = (name: string) => readFileSync(join(certs, name), "utf8");
const JOHN_DOE = () => ({ cert: pem("client.crt"), key: pem("client.key") });

beforeAll(async () => {
  certs = ensureCerts();
  upstream = startWebSocketUpstream();
  idp = await startIdpProcess({ devTls: true });
  const plugin = (route: string, extra = "") =>
    `[[plugins]]\nname = "openid-connect"\nroute = "${route}"\n[plugins.config]\nissuer = "${idp.issuer}"\nauth_methods = ["bearer"]\n${extra}\n`;
  gw = await startGateway({
    config: `${tlsServerConfig({ server: `trusted_certificates = ["${join(certs, "ca.crt")}"]\nshutdown_timeout = 2000` })}
${echoRoutes(upstream, { wss: ["/wss", ["https", "wss"]], "wss-bound": ["/bound", ["https", "wss"]] })}

${plugin("wss")}
${plugin("wss-bound", 'proof_of_possession_mtls = "strict"')}`,
  });
}, 30_000);

afterAll(async () => {
  await gw?.stop();
  await idp?.stop();
  upstream?.stop();
});

async function token(clientId: string, secret: string, clientCert?: { cert: string; key: string }): Promise<string> {
  return (await idp.token(clientId, secret, { clientCert })).access_token;
}

/** The status line of the gateway's answer to an opening handshake over TLS (optionally with a client certificate). */
const handshakeStatus = (path: string, headers: Record<string, string>, clientCert?: { cert: string; key: string }) =>
  statusLineOf({ port: gw.ports.proxyTls, tls: { ca: pem("ca.crt"), ...clientCert } }, handshakeRequest(path, headers));

/** The mTLS listener: `wss://` WebSockets and handshakes with the JohnDoe client certificate. */
const mtls: WebSocketListener = {
  get upstream() {
    return upstream;
  },
  token: () => token("service", SERVICE_SECRET),
  open(path, bearer) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`wss://localhost:${gw.ports.proxyTls}${path}`, {
        headers: { authorization: `Bearer ${bearer}` },
        tls: { ca: pem("ca.crt"), ...JOHN_DOE() },
      } as never);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => resolve(ws);
      ws.onerror = () => reject(new Error("the WebSocket did not open"));
    });
  },
  handshakeStatus: (path, headers = {}) => handshakeStatus(path, headers, JOHN_DOE()),
};
const open = mtls.open;

describe("a WebSocket on the mTLS listener (a wss route with client_ca)", () => {
  it("answers a handshake without a valid token with 401 and never reaches the upstream", () => expectRefusedWithoutToken(mtls, "/wss"));

  it("answers a handshake with a valid token with 101 and hands the upstream the token", async () => {
    const access = await token("service", SERVICE_SECRET);
    expect(await handshakeStatus("/wss", { authorization: `Bearer ${access}` }, JOHN_DOE())).toBe("HTTP/1.1 101 Switching Protocols");
    const ws = await open("/wss", access);
    const reply = nextMessage(ws);
    ws.send("whoami");
    expect((JSON.parse(String(await reply)) as { authorization: string }).authorization).toBe(`Bearer ${access}`);
    ws.close();
  });

  relayCases("/wss", () => mtls);

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

  it(
    "holds a fast caller back while the upstream reads slowly (40 MiB), every message delivered",
    () => expectSlowUpstreamToGetAll(mtls, "/wss", 640),
    BULK_TRANSFER_TIMEOUT_MS,
  );

  it("refuses a handshake without Sec-WebSocket-Key with 400", async () => {
    const status = await statusLineOf(
      { port: gw.ports.proxyTls, tls: { ca: pem("ca.crt") } },
      "GET /wss HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    expect(status).toBe("HTTP/1.1 400 Bad Request");
  });
});
