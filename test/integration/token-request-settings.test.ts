/**
 * Kong's token request settings of openid-connect, end to end against the real IdP
 * (oidc-provider, which records the last token request) and the real gateway:
 * `token_endpoint`, `token_headers_*` and `token_post_args_*`, for the caller's client
 * credentials and for the password grant the gateway makes as its own client.
 */
import { describe, expect, it } from "bun:test";
import { simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { SERVICE_SECRET } from "../support/idp-process.ts";
import { oidcSuite } from "../support/oidc-suite.ts";

const GATEWAY = { id: "gateway", secret: "gateway-secret-0123456789" };
const { idp, upstream, gateways } = oidcSuite({
  idp: { options: { extraClients: [{ client_id: GATEWAY.id, client_secret: GATEWAY.secret, grant_types: ["client_credentials", "password"] }] } },
  neverLogged: () => [SERVICE_SECRET, GATEWAY.secret, "header-secret-value"],
});

async function gateway(plugin: string): Promise<GatewayProcess> {
  const gw = await startGateway({
    config: simpleConfig(
      `${upstream.url}/anything`,
      `\n[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "${idp.issuer}"\ncache_tokens = false\n${plugin}`,
    ),
  });
  gateways.push(gw);
  return gw;
}

const basic = (id: string, secret: string) => `Basic ${btoa(`${id}:${secret}`)}`;
const EXTRAS = [
  `token_headers_names = ["X-Tenant", "X-Api-Key"]`,
  `token_headers_values = ["acme", "header-secret-value"]`,
  `token_post_args_names = ["resource_hint", "grant_type"]`,
  `token_post_args_values = ["orders", "implicit"]`,
].join("\n");

describe("token_headers_* and token_post_args_*", () => {
  it("client_credentials: the caller's token request carries the configured headers and form parameters, its own grant_type kept", async () => {
    const gw = await gateway(`auth_methods = ["client_credentials"]\n${EXTRAS}`);
    const res = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: basic("service", SERVICE_SECRET) } });
    expect(res.status).toBe(200);
    await res.text();
    const seen = (await idp.stats()).lastToken!;
    expect(seen.headers["x-tenant"]).toBe("acme");
    expect(seen.headers["x-api-key"]).toBe("header-secret-value");
    expect(seen.params.resource_hint).toBe("orders");
    expect(seen.params.grant_type).toBe("client_credentials");
  });

  it("password: the gateway's own token request carries them too", async () => {
    const gw = await gateway(`auth_methods = ["password"]\nclient_id = "${GATEWAY.id}"\nclient_secret = "${GATEWAY.secret}"\n${EXTRAS}`);
    const res = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: basic("john", "doe") } });
    expect(res.status).toBe(200);
    await res.text();
    const seen = (await idp.stats()).lastToken!;
    expect(seen.headers["x-tenant"]).toBe("acme");
    expect(seen.params.resource_hint).toBe("orders");
    expect(seen.params.grant_type).toBe("password");
    expect(seen.params.username).toBe("john");
  });
});

describe("token_endpoint", () => {
  it("replaces the discovered token endpoint for client_credentials", async () => {
    const gw = await gateway(
      `auth_methods = ["client_credentials"]\ntoken_endpoint = "${idp.issuer}/protocol/openid-connect/token?via=token_endpoint"`,
    );
    const res = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: basic("service", SERVICE_SECRET) } });
    expect(res.status).toBe(200);
    await res.text();
    expect((await idp.stats()).lastToken!.url).toContain("via=token_endpoint");
  });

  it("replaces it for the password grant: an endpoint nobody answers is the gateway's 5xx, not the caller's 401", async () => {
    const gw = await gateway(
      `auth_methods = ["password"]\nclient_id = "${GATEWAY.id}"\nclient_secret = "${GATEWAY.secret}"\ntoken_endpoint = "http://127.0.0.1:9/token"\ntimeout = 2000`,
    );
    const before = (await idp.stats()).token.total;
    const res = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: basic("john", "doe") } });
    expect(res.status).toBeGreaterThanOrEqual(500);
    await res.text();
    // Replaced, not tried after the discovered one: the IdP's own token endpoint was never asked.
    expect((await idp.stats()).token.total).toBe(before);
  });
});
