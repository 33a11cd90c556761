/**
 * Several issuers on one route (Kong's issuers_allowed, extra_jwks_uris, jwks_endpoint): two real
 * IdP processes (two issuers, as two realms or an IdP migration), a third one not allowed, and a
 * JWKS server of the test's own for keys that are no issuer's.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { SERVICE_SECRET, startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

let a: IdpProcess;
let b: IdpProcess;
let c: IdpProcess;
let upstream: EchoUpstream;
let jwksServer: ReturnType<typeof Bun.serve>;
let jwksUrl: string;
let sign: (claims: Record<string, unknown>) => Promise<string>;
const gateways: GatewayProcess[] = [];

beforeAll(async () => {
  [a, b, c] = await Promise.all([startIdpProcess(), startIdpProcess(), startIdpProcess()]);
  upstream = startEchoUpstream();
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "extra-key", alg: "ES256", use: "sig" };
  jwksServer = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => Response.json({ keys: [jwk] }) });
  jwksUrl = `http://127.0.0.1:${jwksServer.port}/jwks`;
  sign = (claims) =>
    new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: "extra-key", typ: "at+jwt" }).setIssuedAt().setExpirationTime("5m").sign(privateKey);
});
afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await Promise.all([a?.stop(), b?.stop(), c?.stop(), upstream?.stop()]);
  jwksServer?.stop(true);
});

async function gateway(plugin: string): Promise<GatewayProcess> {
  const gw = await startGateway({
    config: simpleConfig(
      `${upstream.url}/anything`,
      `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nauth_methods = ["bearer"]\n${plugin}\n`,
    ),
  });
  gateways.push(gw);
  return gw;
}
const call = (gw: GatewayProcess, token: string) => fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: `Bearer ${token}` } });
const tokenOf = async (idp: IdpProcess) => (await idp.token("service", SERVICE_SECRET)).access_token;

describe("issuers_allowed", () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await gateway(`issuer = "${a.issuer}"\nissuers_allowed = ["${b.issuer}"]`);
  });

  it("accepts tokens of the configured issuer and of an allowed one, each with its own keys", async () => {
    expect((await call(gw, await tokenOf(a))).status).toBe(200);
    expect((await call(gw, await tokenOf(b))).status).toBe(200);
  });

  it("refuses a token of an issuer that is not allowed with 401 invalid_token", async () => {
    const r = await call(gw, await tokenOf(c));
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toContain("invalid_token");
  });

  it("refuses a token whose iss names an allowed issuer but was signed by another's key", async () => {
    const forged = await sign({ iss: b.issuer, client_id: "x", sub: "x" });
    expect((await call(gw, forged)).status).toBe(401);
  });

  it("lists every issuer in the admin API", async () => {
    const body = (await (await fetch(`${gw.adminUrl}/openid-connect/issuers`)).json()) as { data: { issuer: string }[] };
    const issuers = body.data.map((i) => i.issuer);
    expect(issuers).toContain(a.issuer);
    expect(issuers).toContain(b.issuer);
  });
});

describe("extra_jwks_uris and jwks_endpoint", () => {
  it("verify a token of the issuer with keys from a JWKS URL that is no issuer's", async () => {
    const gw = await gateway(`issuer = "${a.issuer}"\nextra_jwks_uris = ["${jwksUrl}"]`);
    expect((await call(gw, await sign({ iss: a.issuer, client_id: "x", sub: "x" }))).status).toBe(200);
    expect((await call(gw, await tokenOf(a))).status).toBe(200);
    // The extra keys never make another issuer's token acceptable.
    expect((await call(gw, await sign({ iss: c.issuer, client_id: "x", sub: "x" }))).status).toBe(401);
  });

  it("take the issuer's keys from jwks_endpoint instead of the discovered jwks_uri", async () => {
    const gw = await gateway(`issuer = "${a.issuer}"\njwks_endpoint = "${jwksUrl}"`);
    expect((await call(gw, await sign({ iss: a.issuer, client_id: "x", sub: "x" }))).status).toBe(200);
    expect((await call(gw, await tokenOf(a))).status).toBe(401);
  });
});
