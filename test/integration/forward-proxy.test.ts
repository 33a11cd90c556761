/**
 * Calls to the IdP through a forward proxy (Kong's `http_proxy`, `https_proxy`, `no_proxy`):
 * the real gateway, the real IdP over http and over https, and a real proxy that counts.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { cert, CERTS_DIR, ensureCerts } from "../support/certs.ts";
import { startForwardProxy, type ForwardProxy } from "../support/forward-proxy.ts";
import { SERVICE_SECRET, startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

const PROXY_PASSWORD = "proxy-pa55word-never-logged";
let idp: IdpProcess;
let tlsIdp: IdpProcess;
let upstream: EchoUpstream;
let proxy: ForwardProxy;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  ensureCerts();
  [idp, tlsIdp, proxy] = await Promise.all([
    startIdpProcess(),
    startIdpProcess({
      options: { tls: { cert: `${CERTS_DIR}/gateway.crt`, key: `${CERTS_DIR}/gateway.key`, ca: `${CERTS_DIR}/ca.crt` } },
      ca: cert("ca.crt"),
    }),
    startForwardProxy({ user: "gw", password: PROXY_PASSWORD }),
  ]);
  upstream = await startEchoUpstream();
});
afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await Promise.all([idp?.stop(), tlsIdp?.stop(), proxy?.stop()]);
  await upstream?.stop();
});

const withCredentials = () => proxy.url.replace("http://", `http://gw:${PROXY_PASSWORD}@`);
const basic = `Basic ${Buffer.from(`service:${SERVICE_SECRET}`).toString("base64")}`;

async function gateway(issuer: string, pluginExtra: string, serverExtra = ""): Promise<GatewayProcess> {
  const gw = await startGateway({
    config: simpleConfig(
      `${upstream.url}/anything`,
      `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "${issuer}"\n${pluginExtra}\n`,
    ).replace("[server]\n", `[server]\ntrusted_certificates = ["${CERTS_DIR}/ca.crt"]\n${serverExtra}`),
  });
  gateways.push(gw);
  return gw;
}

const call = (gw: GatewayProcess) => fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: basic } });

describe("a forward proxy for calls to the IdP", () => {
  it("carries discovery, keys and the token call to an http IdP (http_proxy), with the proxy's credentials", async () => {
    const before = proxy.requests.length;
    const gw = await gateway(idp.issuer, `http_proxy = "${withCredentials()}"`);
    expect((await call(gw)).status).toBe(200);
    const seen = proxy.requests.slice(before);
    expect(seen.some((u) => u.startsWith(idp.issuer) || u.includes("/.well-known/openid-configuration"))).toBe(true);
    expect(seen.some((u) => u.includes("token"))).toBe(true);
    expect(proxy.refused).toBe(0);
  });

  it("tunnels to an https IdP with CONNECT (https_proxy from [server], as a default for every plugin)", async () => {
    const before = proxy.connects.length;
    const gw = await gateway(tlsIdp.issuer, "", `https_proxy = "${withCredentials()}"\n`);
    expect((await call(gw)).status).toBe(200);
    const port = new URL(tlsIdp.issuer).port;
    expect(proxy.connects.slice(before).some((c) => c.endsWith(`:${port}`))).toBe(true);
  });

  it("goes direct to a host listed in no_proxy", async () => {
    const before = proxy.requests.length + proxy.connects.length;
    const gw = await gateway(idp.issuer, `http_proxy = "${withCredentials()}"\nno_proxy = "127.0.0.1,localhost"`);
    expect((await call(gw)).status).toBe(200);
    expect(proxy.requests.length + proxy.connects.length).toBe(before);
  });

  it("fails as the IdP being unreachable (503), never 401, when the proxy refuses the gateway", async () => {
    const gw = await gateway(idp.issuer, `http_proxy = "${proxy.url.replace("http://", "http://gw:wrong@")}"`);
    const r = await call(gw);
    expect(r.status).toBeGreaterThanOrEqual(500);
  });

  it("never shows or logs the proxy's credentials", async () => {
    const gw = gateways[0]!;
    const text = await (await fetch(`${gw.adminUrl}/plugins`)).text();
    expect(text).toContain("http_proxy");
    expect(text).not.toContain(PROXY_PASSWORD);
    for (const g of gateways) expect(g.output.join("\n")).not.toContain(PROXY_PASSWORD);
  });
});
