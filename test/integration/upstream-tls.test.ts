/**
 * TLS towards the upstream, per service: an upstream that requires a client certificate,
 * reached with the service's `client_certificate` and trusted through its `ca_certificates`.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { createServer, type Server } from "node:https";
import { cert, ensureCerts } from "../support/certs.ts";
import { defaultRuntime, startGateway, type GatewayProcess } from "../support/gateway-process.ts";

let upstream: Server;
let port: number;
let gw: GatewayProcess;

beforeAll(async () => {
  const dir = ensureCerts();
  // rejectUnauthorized: a request reaches the handler only over a handshake with a valid client certificate.
  upstream = createServer(
    { cert: cert("gateway.crt"), key: cert("gateway.key"), ca: cert("ca.crt"), requestCert: true, rejectUnauthorized: true },
    (_req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ client_certificate: "verified" }));
    },
  );
  await new Promise<void>((ok) => upstream.listen(0, "127.0.0.1", () => ok()));
  port = (upstream.address() as { port: number }).port;
  const svc = (name: string, extra: string) => `
[[services]]
name = "${name}"
url = "https://127.0.0.1:${port}"
connect_timeout = 2000
read_timeout = 2000
retries = 0
ca_certificates = ["${dir}/ca.crt"]
${extra}
[[routes]]
name = "${name}"
service = "${name}"
paths = ["/${name}"]
`;
  gw = await startGateway({
    config: `[server]
proxy_listen = "127.0.0.1:{{proxy}}"
admin_listen = "127.0.0.1:{{admin}}"
shutdown_timeout = 2000

[[upstreams]]
name = "mtls-pool"
[[upstreams.targets]]
target = "127.0.0.1:${port}"
${svc("with-cert", `client_certificate = { cert = "${dir}/client.crt", key = "${dir}/client.key" }`)}${svc("without-cert", "")}
[[services]]
name = "balanced"
protocol = "https"
host = "mtls-pool"
ca_certificates = ["${dir}/ca.crt"]
client_certificate = { cert = "${dir}/client.crt", key = "${dir}/client.key" }

[[routes]]
name = "balanced"
service = "balanced"
paths = ["/balanced"]
`,
  });
});

afterAll(async () => {
  await gw?.stop();
  upstream?.close();
});

describe("mutual TLS to the upstream", () => {
  it("presents the service's client_certificate and trusts its ca_certificates: 200", async () => {
    const res = await fetch(`${gw.proxyUrl}/with-cert`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ client_certificate: "verified" });
  });

  it("answers 502 when the service has no client certificate for an upstream that requires one", async () => {
    const res = await fetch(`${gw.proxyUrl}/without-cert`);
    // Known gap: on Deno the raw-socket client does not see the TLS 1.3 "certificate required"
    // alert while its read is pending, so the refusal ends as read_timeout's 504, not 502.
    if (defaultRuntime === "deno") expect([502, 504]).toContain(res.status);
    else expect(res.status).toBe(502);
  });

  it("does the same for a balanced service's targets", async () => {
    const res = await fetch(`${gw.proxyUrl}/balanced`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ client_certificate: "verified" });
  });
});
