/**
 * Behind a TLS-terminating load balancer (kong.conf's trusted_ips, real_ip_header,
 * real_ip_recursive, and the client certificate in X-Forwarded-Client-Cert): a real balancer in
 * the test terminates mutual TLS and forwards to the real gateway, which checks certificate-bound
 * tokens from the real IdP against the forwarded certificate. From an untrusted peer the same
 * headers are ignored and removed.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer as createTlsServer, type Server, type TLSSocket } from "node:tls";
import { join } from "node:path";
import { ensureCerts } from "../support/certs.ts";
import { serverTable, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

let certs: string;
let idp: IdpProcess;
let upstream: EchoUpstream;
let behindLb: GatewayProcess;
let noTrust: GatewayProcess;
let lb: Server;
let lbUrl: string;
let boundToken: string;
const pem = (name: string) => readFileSync(join(certs, name), "utf8");

/** The balancer: terminates TLS (asking for a client certificate), forwards over HTTP with XFCC and XFF. */
function startBalancer(target: () => string, xfcc: (cert: X509Certificate | undefined) => string | undefined): Promise<Server> {
  // node:tls handing sockets to node:http, as the gateway's own mTLS listener: Bun's node:https does not show the peer certificate.
  const http = createHttpServer(async (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerX509Certificate?.();
    const headers: Record<string, string> = {
      authorization: String(req.headers.authorization ?? ""),
      "x-forwarded-for": "203.0.113.9",
      "x-forwarded-proto": "https",
      "x-forwarded-host": "api.example",
    };
    const value = xfcc(peer);
    if (value !== undefined) headers["x-forwarded-client-cert"] = value;
    const r = await fetch(`${target()}${req.url}`, { headers });
    res.writeHead(r.status, {
      "content-type": r.headers.get("content-type") ?? "text/plain",
      ...(r.headers.get("www-authenticate") ? { "www-authenticate": r.headers.get("www-authenticate")! } : {}),
    });
    res.end(Buffer.from(await r.arrayBuffer()));
  });
  const server = createTlsServer(
    {
      cert: pem("gateway.crt"),
      key: pem("gateway.key"),
      ca: pem("ca.crt"),
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: ["http/1.1"],
    },
    (socket) => http.emit("connection", socket),
  );
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

const urlEncodedPem = (c: X509Certificate) => encodeURIComponent(c.toString());
const sha256Hex = (c: X509Certificate) => c.fingerprint256.replace(/:/g, "").toLowerCase();
let xfccMode: "cert" | "hash" | "garbage" = "cert";

const gatewayConfig = (trusted: string) => `${serverTable(`trusted_certificates = ["${join(certs, "ca.crt")}"]
trusted_ips = [${trusted}]
real_ip_header = "X-Forwarded-For"
real_ip_recursive = true
client_cert_header = "X-Forwarded-Client-Cert"`)}
[[services]]
name = "echo"
url = "${upstream.url}/anything"

[[routes]]
name = "bound"
service = "echo"
paths = ["/bound"]

[[routes]]
name = "open"
service = "echo"
paths = ["/open"]

[[plugins]]
name = "openid-connect"
route = "bound"
[plugins.config]
issuer = "${idp.issuer}"
auth_methods = ["bearer"]
proof_of_possession_mtls = "strict"
`;

beforeAll(async () => {
  certs = ensureCerts();
  upstream = startEchoUpstream();
  idp = await startIdpProcess({ devTls: true });
  boundToken = (await idp.token("cert-bound", "cert-bound-secret", { clientCert: { cert: pem("client.crt"), key: pem("client.key") } })).access_token;
  behindLb = await startGateway({ config: gatewayConfig('"127.0.0.1/32", "::1"') });
  noTrust = await startGateway({ config: gatewayConfig('"10.0.0.0/8"') });
  lb = await startBalancer(
    () => behindLb.proxyUrl,
    (c) =>
      !c
        ? undefined
        : xfccMode === "cert"
          ? `Hash=${sha256Hex(c)};Cert="${urlEncodedPem(c)}";Subject="CN=JohnDoe"`
          : xfccMode === "hash"
            ? `Hash=${sha256Hex(c)}`
            : 'Cert="not%20a%20certificate"',
  );
  lbUrl = `https://127.0.0.1:${(lb.address() as { port: number }).port}`;
}, 30_000);

afterAll(async () => {
  lb?.close();
  await Promise.all([behindLb?.stop(), noTrust?.stop(), idp?.stop()]);
  await upstream?.stop();
});

const viaLb = (path: string, client: "client" | "other-client") =>
  fetch(`${lbUrl}${path}`, {
    headers: { authorization: `Bearer ${boundToken}` },
    tls: { ca: pem("ca.crt"), cert: pem(`${client}.crt`), key: pem(`${client}.key`) },
  } as RequestInit);

describe("behind a trusted TLS-terminating load balancer", () => {
  it("accepts a certificate-bound token with the certificate the balancer forwarded (Cert=)", async () => {
    xfccMode = "cert";
    expect((await viaLb("/bound", "client")).status).toBe(200);
  });

  it("accepts it with only the certificate's hash forwarded (Hash=)", async () => {
    xfccMode = "hash";
    expect((await viaLb("/bound", "client")).status).toBe(200);
  });

  it("refuses it with another client certificate: 401", async () => {
    xfccMode = "cert";
    const r = await viaLb("/bound", "other-client");
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toContain("invalid_token");
  });

  it("refuses it when the certificate header does not parse (401), and logs it", async () => {
    xfccMode = "garbage";
    expect((await viaLb("/bound", "client")).status).toBe(401);
    await behindLb.waitForLog((l) => l.event === "trusted_proxy.bad_client_certificate_header", 5000);
  });

  it("takes the client's address from the chain and passes the balancer's X-Forwarded-* on", async () => {
    xfccMode = "cert";
    const r = await viaLb("/open/x", "client");
    const body = (await r.json()) as { headers: Record<string, string> };
    expect(body.headers["x-real-ip"]).toBe("203.0.113.9");
    expect(body.headers["x-forwarded-for"]).toBe("203.0.113.9, 127.0.0.1");
    expect(body.headers["x-forwarded-proto"]).toBe("https");
    expect(body.headers["x-forwarded-host"]).toBe("api.example");
    expect(body.headers["x-forwarded-client-cert"]).toBeUndefined();
  });
});

describe("the same headers from a peer that is not trusted", () => {
  const forged = () => {
    const c = new X509Certificate(pem("client.crt"));
    return {
      authorization: `Bearer ${boundToken}`,
      "x-forwarded-client-cert": `Hash=${sha256Hex(c)};Cert="${urlEncodedPem(c)}"`,
      "x-forwarded-for": "203.0.113.9",
    };
  };

  it("are never trusted: the bound token is refused without a real certificate", async () => {
    expect((await fetch(`${noTrust.proxyUrl}/bound`, { headers: forged() })).status).toBe(401);
  });

  it("are removed before the upstream, and the address is the peer's", async () => {
    const body = (await (await fetch(`${noTrust.proxyUrl}/open/x`, { headers: forged() })).json()) as { headers: Record<string, string> };
    expect(body.headers["x-forwarded-client-cert"]).toBeUndefined();
    expect(body.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(body.headers["x-real-ip"]).toBe("127.0.0.1");
  });
});
