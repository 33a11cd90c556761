import { describe, expect, it } from "bun:test";
import type { OpenIdConnectConfig } from "../../../../src/plugins/openid-connect/schema.ts";
import { errorOf as tomlErrorOf, parseToml } from "../../../support/config.ts";

function config(pluginToml: string): string {
  return `
[[services]]
name = "openid-connect"
url = "http://127.0.0.1:9000/anything"

[[routes]]
name = "openid-connect"
service = "openid-connect"
paths = ["/"]

[[plugins]]
name = "openid-connect"
[plugins.config]
${pluginToml}
`;
}

function pluginConfig(pluginToml: string): OpenIdConnectConfig {
  return parseToml(config(pluginToml)).plugins[0]!.config as OpenIdConnectConfig;
}

const errorOf = (pluginToml: string): string => tomlErrorOf(config(pluginToml));

const ISSUER = 'issuer = "http://localhost:8080/realms/master"';

describe("openid-connect config", () => {
  it("accepts the guide's settings and fills Kong's defaults", () => {
    const c = pluginConfig(`${ISSUER}\nauth_methods = ["client_credentials"]\nclient_credentials_param_type = ["header"]`);
    expect(c.auth_methods).toEqual(["client_credentials"]);
    expect(c.client_credentials_param_type).toEqual(["header"]);
    expect(c.timeout).toBe(10_000);
    expect(c.ssl_verify).toBe(true);
    expect(c.rediscovery_lifetime).toBe(30);
    expect(c.leeway).toBe(0);
    expect(c.cache_tokens).toBe(true);
    expect(c.cache_ttl).toBe(3600);
    expect(c.cache_tokens_max).toBe(100_000);
    expect(c.hide_credentials).toBe(true);
    expect(c.upstream_access_token_header).toEqual({ name: "authorization", prefix: "Bearer " });
    expect(c.unauthorized_error_message).toBe("Unauthorized");
    expect(c.display_errors).toBe(false);
    expect(c.enable_hs_signatures).toBe(false);
  });

  it("sends no scope unless scopes are configured", () => {
    expect(pluginConfig(ISSUER).scopes).toEqual([]);
  });

  it("looks for credentials in header, query and body by default", () => {
    expect(pluginConfig(ISSUER).client_credentials_param_type).toEqual(["header", "query", "body"]);
  });

  it("parses upstream_access_token_header with or without a scheme", () => {
    expect(pluginConfig(`${ISSUER}\nupstream_access_token_header = "X-Access-Token"`).upstream_access_token_header).toEqual({
      name: "x-access-token",
      prefix: "",
    });
    expect(errorOf(`${ISSUER}\nupstream_access_token_header = "bad header:bearer"`)).toContain(
      "plugins[0].config.upstream_access_token_header: expected",
    );
  });

  it("names the missing issuer by its full path", () => {
    expect(errorOf('auth_methods = ["client_credentials"]')).toContain("plugins[0].config.issuer: missing required key");
  });

  it("refuses an issuer that is not an http(s) URL", () => {
    expect(errorOf('issuer = "localhost:8080/realms/master"')).toContain("plugins[0].config.issuer: expected an http:// or https:// URL");
  });

  it("refuses auth methods that are not implemented yet, saying so", () => {
    const msg = errorOf(`${ISSUER}\nauth_methods = ["client_credentials", "authorization_code", "userinfo"]`);
    expect(msg).toContain('plugins[0].config.auth_methods[1]: "authorization_code" is not supported yet; supported: "client_credentials"');
    expect(msg).toContain('plugins[0].config.auth_methods[2]: "userinfo" is not supported yet');
  });

  it("refuses unknown auth methods and param types", () => {
    expect(errorOf(`${ISSUER}\nauth_methods = ["magic"]`)).toContain("plugins[0].config.auth_methods[0]");
    expect(errorOf(`${ISSUER}\nclient_credentials_param_type = ["cookie"]`)).toContain("plugins[0].config.client_credentials_param_type[0]");
  });

  it("refuses unknown keys with a did-you-mean", () => {
    expect(errorOf(`${ISSUER}\ncache_token = false`)).toContain('plugins[0].config.cache_token: unknown key (did you mean "cache_tokens"?)');
  });

  it("wants as many header names as claims", () => {
    expect(errorOf(`${ISSUER}\nupstream_headers_claims = ["sub", "azp"]\nupstream_headers_names = ["x-sub"]`)).toContain(
      "plugins[0].config.upstream_headers_names: expected as many entries as 'upstream_headers_claims' (2), got 1",
    );
  });

  it("checks the TTL bounds and the salt", () => {
    expect(errorOf(`${ISSUER}\ncache_ttl_min = 100\ncache_ttl_max = 10`)).toContain(
      "plugins[0].config.cache_ttl_min: expected 'cache_ttl_min' not above 'cache_ttl_max'",
    );
    expect(errorOf(`${ISSUER}\ncache_tokens_salt = "short"`)).toContain("plugins[0].config.cache_tokens_salt: expected at least 16 characters");
    expect(errorOf(`${ISSUER}\ntimeout = 0`)).toContain("plugins[0].config.timeout: expected at least 1 ms");
    expect(errorOf(`${ISSUER}\nrediscovery_lifetime = 0`)).toContain("plugins[0].config.rediscovery_lifetime: expected at least 1 second");
  });

  it("never passes the caller's credentials or a hop-by-hop header on to the introspection endpoint", () => {
    for (const name of ["Authorization", "Cookie", "DPoP", "Host", "Content-Length", "Connection", "Proxy-Connection", "Proxy-Authorization", "TE"]) {
      expect(errorOf(`${ISSUER}\nintrospection_headers_client = ["${name}"]`)).toContain(
        "plugins[0].config.introspection_headers_client[0]: is the caller's credentials or the request's framing",
      );
    }
    expect(pluginConfig(`${ISSUER}\nintrospection_headers_client = ["X-Tenant"]`).introspection_headers_client).toEqual(["X-Tenant"]);
  });
});
