/**
 * `client_auth = "client_secret_jwt"` (Kong's name, RFC 7523 §2.2) end to end: the real gateway
 * authenticates as its own client to the real IdP (oidc-provider, which verifies the assertion)
 * with a JWT MACed with its secret, for introspection, token exchange and the password grant
 * (openid-connect), and for its own token (upstream-oauth, `client.client_secret_jwt_alg`).
 * The secret itself is never sent.
 */
import { describe, expect, it } from "bun:test";
import { simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { SERVICE_SECRET } from "../support/idp-process.ts";
import { oidcSuite } from "../support/oidc-suite.ts";

const EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/** The gateway's client at the IdP: it accepts client_secret_jwt only. */
const GATEWAY = { id: "gateway-hs", secret: "hs-secret-0123456789-0123456789-0123456789-0123456789-0123456789" };

const header = (jwt: string) => JSON.parse(Buffer.from(jwt.split(".")[0]!, "base64url").toString());
const payload = (jwt: string) => JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString());

const { idp, upstream, gateways } = oidcSuite({
  idp: {
    options: {
      extraClients: [
        {
          client_id: GATEWAY.id,
          client_secret: GATEWAY.secret,
          token_endpoint_auth_method: "client_secret_jwt",
          grant_types: ["client_credentials", "password", EXCHANGE_GRANT],
        },
      ],
    },
  },
  neverLogged: () => [GATEWAY.secret],
});

async function gateway(plugin: string): Promise<GatewayProcess> {
  const gw = await startGateway({ config: simpleConfig(`${upstream.url}/anything`, plugin) });
  gateways.push(gw);
  return gw;
}

const oidc = (extra: string) =>
  `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "${idp.issuer}"\nclient_id = "${GATEWAY.id}"\nclient_secret = "${GATEWAY.secret}"\nclient_auth = "client_secret_jwt"\n${extra}`;

/** The assertion the IdP received with the last request (its recorder leaves `client_secret` out, never the assertion). */
function expectAssertion(params: Record<string, unknown>, alg: string): void {
  expect(params.client_assertion_type).toBe(ASSERTION_TYPE);
  const assertion = params.client_assertion as string;
  expect(header(assertion).alg).toBe(alg);
  const claims = payload(assertion);
  expect(claims.iss).toBe(GATEWAY.id);
  expect(claims.sub).toBe(GATEWAY.id);
  expect(claims.aud).toBe(idp.issuer);
  expect(claims.exp - claims.iat).toBe(60);
  expect(typeof claims.jti).toBe("string");
}

describe("client_secret_jwt in openid-connect", () => {
  it("introspects an opaque token with an HS256 assertion (the default), and the token passes", async () => {
    const gw = await gateway(oidc(`auth_methods = ["introspection"]\ncache_introspection = false`));
    const { access_token } = await idp.token("opaque", "opaque-secret");
    const res = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: `Bearer ${access_token}` } });
    expect(res.status).toBe(200);
    await res.text();
    expectAssertion((await idp.stats()).lastIntrospection!.params, "HS256");
  });

  it("signs with client_alg when it is HS384 or HS512", async () => {
    for (const alg of ["HS384", "HS512"]) {
      const gw = await gateway(oidc(`auth_methods = ["introspection"]\ncache_introspection = false\nclient_alg = "${alg}"`));
      const { access_token } = await idp.token("opaque", "opaque-secret");
      const res = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: `Bearer ${access_token}` } });
      expect(res.status).toBe(200);
      await res.text();
      expectAssertion((await idp.stats()).lastIntrospection!.params, alg);
    }
  });

  it("exchanges the caller's token at the token endpoint with the assertion", async () => {
    const gw = await gateway(oidc(`auth_methods = ["bearer"]\ntoken_exchange_resource = "https://orders.example"`));
    const { access_token } = await idp.token("service", SERVICE_SECRET);
    const before = (await idp.stats()).token.byGrant[EXCHANGE_GRANT] ?? 0;
    const res = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: `Bearer ${access_token}` } });
    expect(res.status).toBe(200);
    const forwarded = ((await res.json()) as { headers: Record<string, string> }).headers.authorization!.slice(7);
    expect(payload(forwarded).client_id).toBe(GATEWAY.id);
    const stats = await idp.stats();
    expect(stats.token.byGrant[EXCHANGE_GRANT]).toBe(before + 1);
    expectAssertion(stats.lastToken!.params, "HS256");
  });

  it("gets a user's token with the password grant, authenticated by the assertion", async () => {
    const gw = await gateway(oidc(`auth_methods = ["password"]`));
    const res = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: `Basic ${btoa("john:doe")}` } });
    expect(res.status).toBe(200);
    await res.text();
    const last = (await idp.stats()).lastToken!;
    expect(last.params.grant_type).toBe("password");
    expectAssertion(last.params, "HS256");
  });

  it("is the gateway's misconfiguration (503, never a 401) when the IdP refuses the assertion of a wrong secret", async () => {
    const gw = await gateway(
      `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "${idp.issuer}"\nclient_id = "${GATEWAY.id}"\nclient_secret = "not-the-secret-0123456789"\nclient_auth = "client_secret_jwt"\nauth_methods = ["introspection"]\ncache_introspection = false`,
    );
    const { access_token } = await idp.token("opaque", "opaque-secret");
    const before = (await idp.stats()).introspection;
    const res = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: `Bearer ${access_token}` } });
    expect(res.status).toBe(503);
    await res.text();
    // The IdP was asked, with an assertion, and refused it (not a 503 for any other reason).
    const stats = await idp.stats();
    expect(stats.introspection).toBe(before + 1);
    expectAssertion(stats.lastIntrospection!.params, "HS256");
  });
});

describe("client_secret_jwt in upstream-oauth", () => {
  it("gets the gateway's token with Kong's default client_secret_jwt_alg, HS512", async () => {
    const gw = await gateway(
      `[[plugins]]\nname = "upstream-oauth"\n[plugins.config.oauth]\nissuer = "${idp.issuer}"\nclient_id = "${GATEWAY.id}"\nclient_secret = "${GATEWAY.secret}"\n[plugins.config.client]\nauth_method = "client_secret_jwt"`,
    );
    const res = await fetch(`${gw.proxyUrl}/anything`);
    expect(res.status).toBe(200);
    const forwarded = ((await res.json()) as { headers: Record<string, string> }).headers.authorization!.slice(7);
    expect(payload(forwarded).client_id).toBe(GATEWAY.id);
    const last = (await idp.stats()).lastToken!;
    expect(last.params.grant_type).toBe("client_credentials");
    expectAssertion(last.params, "HS512");
  });
});
