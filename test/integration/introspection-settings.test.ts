/**
 * Kong's introspection settings of openid-connect, end to end against the real IdP
 * (oidc-provider, which records the last introspection request) and the real gateway:
 * `introspection_headers_*` (`_client` too), `introspection_post_args_*` and `introspection_check_active`.
 */
import { describe, expect, it } from "bun:test";
import { errorOf } from "../support/config.ts";
import { simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { SERVICE_SECRET } from "../support/idp-process.ts";
import { oidcSuite } from "../support/oidc-suite.ts";

const tokensSeen = new Set<string>();
const { idp, upstream, gateways } = oidcSuite({ neverLogged: () => [SERVICE_SECRET, "header-secret-value", ...tokensSeen] });

const INTROSPECTION = `auth_methods = ["introspection"]\nclient_id = "service"\nclient_secret = "${SERVICE_SECRET}"\ncache_introspection = false`;

async function gateway(plugin: string, client = INTROSPECTION): Promise<GatewayProcess> {
  const gw = await startGateway({
    config: simpleConfig(
      `${upstream.url}/anything`,
      `\n[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "${idp.issuer}"\n${client}\n${plugin}`,
    ),
  });
  gateways.push(gw);
  return gw;
}

async function opaqueToken(): Promise<string> {
  const { access_token } = await idp.token("opaque", "opaque-secret");
  expect(access_token.split(".")).toHaveLength(1);
  tokensSeen.add(access_token);
  return access_token;
}

const call = (gw: GatewayProcess, token: string) => fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: `Bearer ${token}` } });

describe("introspection_headers_* and introspection_post_args_*", () => {
  it("sends the configured headers and form parameters with each introspection request, and the token still passes", async () => {
    const gw = await gateway(
      [
        `introspection_headers_names = ["X-Tenant", "X-Api-Key"]`,
        `introspection_headers_values = ["acme", "header-secret-value"]`,
        `introspection_post_args_names = ["resource", "token"]`,
        `introspection_post_args_values = ["https://api.example", "overridden"]`,
      ].join("\n"),
    );
    const token = await opaqueToken();
    const res = await call(gw, token);
    expect(res.status).toBe(200);
    await res.text();
    const seen = (await idp.stats()).lastIntrospection!;
    expect(seen.headers["x-tenant"]).toBe("acme");
    expect(seen.headers["x-api-key"]).toBe("header-secret-value");
    expect(seen.params.resource).toBe("https://api.example");
    expect(seen.params.token_type_hint).toBe("access_token");
  });

  it("refuses at start a names list and a values list of different lengths, naming the key", async () => {
    const text = simpleConfig(
      "http://127.0.0.1:1/",
      `\n[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "https://idp.example"\n${INTROSPECTION}\nintrospection_post_args_names = ["a", "b"]\nintrospection_post_args_values = ["1"]`,
    );
    expect(errorOf(text)).toMatch(/introspection_post_args_values.*expected as many entries as 'introspection_post_args_names' \(2\), got 1/s);
  });
});

describe("introspection_headers_client", () => {
  it("passes the caller's named header on to the IdP, the configured one winning, and keys the cache by its value", async () => {
    const gw = await gateway(
      [
        `introspection_headers_client = ["X-Tenant-Hint", "X-Api-Key"]`,
        `introspection_headers_names = ["X-Api-Key"]`,
        `introspection_headers_values = ["header-secret-value"]`,
      ].join("\n"),
      INTROSPECTION.replace("cache_introspection = false", "cache_introspection = true"),
    );
    const token = await opaqueToken();
    const send = (tenant: string) =>
      fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: `Bearer ${token}`, "x-tenant-hint": tenant, "x-api-key": "forged" } });
    const before = (await idp.stats()).introspection;
    expect((await send("acme")).status).toBe(200);
    const seen = (await idp.stats()).lastIntrospection!;
    expect(seen.headers["x-tenant-hint"]).toBe("acme");
    expect(seen.headers["x-api-key"]).toBe("header-secret-value");
    expect((await send("acme")).status).toBe(200);
    expect((await idp.stats()).introspection).toBe(before + 1); // the same value: from the cache
    expect((await send("globex")).status).toBe(200);
    expect((await idp.stats()).introspection).toBe(before + 2); // another value: the IdP is asked
    expect((await idp.stats()).lastIntrospection!.headers["x-tenant-hint"]).toBe("globex");
  });

  it("refuses at start a header that carries the caller's credentials, naming the key", async () => {
    const text = simpleConfig(
      "http://127.0.0.1:1/",
      `\n[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "https://idp.example"\n${INTROSPECTION}\nintrospection_headers_client = ["Cookie"]`,
    );
    expect(errorOf(text)).toMatch(/introspection_headers_client.*caller's credentials/s);
  });
});

describe("introspection_check_active", () => {
  it("refuses by default a token the IdP answers active: false with 401 invalid_token", async () => {
    const gw = await gateway("");
    const before = (await idp.stats()).introspection;
    const res = await call(gw, "not-a-token-the-idp-issued");
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
    expect((await idp.stats()).introspection).toBe(before + 1); // the IdP's answer decided, not the gateway alone
  });

  it("accepts it with introspection_check_active = false, as Kong does", async () => {
    const gw = await gateway("introspection_check_active = false");
    const before = (await idp.stats()).introspection;
    const res = await call(gw, "not-a-token-the-idp-issued");
    expect(res.status).toBe(200);
    await res.text();
    expect((await idp.stats()).introspection).toBe(before + 1);
  });
});

describe("introspection_endpoint_auth_method", () => {
  // The IdP takes the secret in a Basic header or in the form, and refuses a client without it.
  const client = `auth_methods = ["introspection"]\nclient_id = "service"\nclient_secret = "${SERVICE_SECRET}"\nclient_auth = "none"\ncache_introspection = false`;

  it("authenticates introspection with it instead of client_auth: the secret goes in the form and the token passes", async () => {
    const gw = await gateway(`introspection_endpoint_auth_method = "client_secret_post"`, client);
    const res = await call(gw, await opaqueToken());
    expect(res.status).toBe(200);
    await res.text();
    expect((await idp.stats()).lastIntrospection!.params.client_id).toBe("service");
  });

  it("without it, client_auth applies: the IdP refuses the unauthenticated client, the gateway's own misconfiguration (503, never a 401)", async () => {
    const gw = await gateway("", client);
    const res = await call(gw, await opaqueToken());
    expect(res.status).toBe(503);
    await res.text();
  });

  it("refuses at start a method whose credentials are missing, naming the key", async () => {
    const text = simpleConfig(
      "http://127.0.0.1:1/",
      `\n[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "https://idp.example"\nauth_methods = ["introspection"]\nclient_id = "c"\nclient_secret = "s"\nintrospection_endpoint_auth_method = "tls_client_auth"`,
    );
    expect(errorOf(text)).toMatch(/'introspection_endpoint_auth_method' "tls_client_auth" needs 'tls_client_auth_cert'/);
  });
});

describe("upstream_introspection_header", () => {
  it("sends the introspection response to the upstream as base64url JSON, in place of a header the caller forged", async () => {
    const gw = await gateway(`upstream_introspection_header = "X-Introspection"`);
    const token = await opaqueToken();
    const res = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: `Bearer ${token}`, "x-introspection": "forged" } });
    expect(res.status).toBe(200);
    const { headers } = (await res.json()) as { headers: Record<string, string> };
    const value = headers["x-introspection"]!;
    expect(value).toMatch(/^[A-Za-z0-9_-]+$/);
    const introspected = JSON.parse(Buffer.from(value, "base64url").toString("utf8"));
    expect(introspected.active).toBe(true);
    expect(introspected.client_id).toBe("opaque");
  });
});
