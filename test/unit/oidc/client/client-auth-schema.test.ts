/**
 * The config of the gateway's own identity, as `check` sees it (no files, no network): `[keys]`,
 * openid-connect's client keys for `password` and `introspection`, and upstream-oauth's tables.
 * Every refusal names the key.
 */
import { describe, expect, it } from "bun:test";
import type { OpenIdConnectConfig } from "../../../../src/plugins/openid-connect/schema.ts";
import { passwordParamTypes } from "../../../../src/plugins/openid-connect/authn/password.ts";
import { authMethod, type UpstreamOauthConfig } from "../../../../src/plugins/upstream-oauth/schema.ts";
import { errorOf as tomlErrorOf, parseToml } from "../../../support/config.ts";

const BASE = `
[[services]]
name = "api"
url = "http://127.0.0.1:9000/anything"

[[routes]]
name = "api"
service = "api"
paths = ["/"]
`;

const parse = (toml: string) => parseToml(`${BASE}\n${toml}`);
const errorOf = (toml: string): string => tomlErrorOf(`${BASE}\n${toml}`);

const oidc = (keys: string) => `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "http://localhost:8080/realms/master"\n${keys}`;
const oidcConfig = (keys: string) => parse(oidc(keys)).plugins[0]!.config as OpenIdConnectConfig;
const upstreamOauth = (tables: string) => `[[plugins]]\nname = "upstream-oauth"\n${tables}`;
const uoConfig = (tables: string) => parse(upstreamOauth(tables)).plugins[0]!.config as UpstreamOauthConfig;

describe("[keys]", () => {
  it("defaults to data/gateway-jwks.json next to gateway.toml, a one-hour grace, nothing on the proxy", () => {
    const { keys } = parse("");
    expect(keys).toEqual({ jwks_file: "/etc/gw/data/gateway-jwks.json", rotation_grace: 3600, rotation_signing_delay: 60 });
  });

  it("takes a publish_path, and refuses one that is not a plain path", () => {
    expect(parse(`[keys]\npublish_path = "/.well-known/gateway-jwks.json"`).keys.publish_path).toBe("/.well-known/gateway-jwks.json");
    expect(errorOf(`[keys]\npublish_path = "jwks"`)).toContain("keys.publish_path: expected a path");
    expect(errorOf(`[keys]\npublish_path = "/:kid"`)).toContain("keys.publish_path");
    expect(errorOf(`[keys]\njwks_flie = "x"`)).toContain('keys.jwks_flie: unknown key (did you mean "jwks_file"?)');
  });
});

describe("openid-connect's own client", () => {
  it("is needed by password and introspection: client_id is then required", () => {
    expect(errorOf(oidc(`auth_methods = ["password"]`))).toContain(
      `plugins[0].config.client_id: missing required key: 'auth_methods' "password" needs the gateway's own 'client_id'`,
    );
    expect(errorOf(oidc(`auth_methods = ["bearer", "introspection"]`))).toContain("plugins[0].config.client_id");
    // Only the workflow users come for is on by default; bearer is a decision (it accepts any token of the issuer).
    expect(oidcConfig("").auth_methods).toEqual(["client_credentials"]);
  });

  it("takes Kong's one-element lists for client_id and client_secret, not two clients", () => {
    const c = oidcConfig(`auth_methods = ["password"]\nclient_id = ["kong"]\nclient_secret = ["s3cret"]`);
    expect(c.client_id).toBe("kong");
    expect(c.client_secret).toBe("s3cret");
    expect(errorOf(oidc(`auth_methods = ["password"]\nclient_id = ["a", "b"]`))).toContain("a plugin is one client of the IdP");
  });

  it("defaults: private_key_jwt with RS256 when there is neither a secret nor a certificate, aud = the issuer", () => {
    const c = oidcConfig(`auth_methods = ["password"]\nclient_id = "kong"`);
    expect(c.client_auth).toBeUndefined();
    expect(c.client_alg).toBe("RS256");
    expect(c.client_assertion_audience).toBe("issuer");
    expect(c.introspection_hint).toBe("access_token");
    expect(c.introspect_jwt_tokens).toBe(false);
    expect(c.cache_introspection).toBe(true);
  });

  it.each([
    [`client_auth = "client_secret_post"`, "client_secret: missing required key"],
    [`client_auth = ["private_key_jwt", "client_secret_basic"]`, "client_secret: missing required key"],
    [`client_auth = "tls_client_auth"`, "tls_client_auth_cert: missing required key"],
    [`tls_client_auth_cert = "client.crt"`, "tls_client_auth_key: missing required key: 'tls_client_auth_cert' needs 'tls_client_auth_key'"],
    [`client_auth = "client_secret_jwt"`, "client_secret: missing required key: 'client_auth' \"client_secret_jwt\" needs 'client_secret'"],
    [`client_auth = "client_secret_magic"`, "client_auth"],
    [`client_alg = "HS256"`, `client_alg: "HS256" is for "client_secret_jwt"`],
    [`mtls_token_endpoint = "ftp://x"`, "mtls_token_endpoint"],
  ])("refuses %s, naming the key", (keys, message) => {
    expect(errorOf(oidc(`auth_methods = ["introspection"]\nclient_id = "kong"\n${keys}`))).toContain(`plugins[0].config.${message}`);
  });

  it("resolves the certificate paths against gateway.toml's folder", () => {
    const c = oidcConfig(
      `auth_methods = ["password"]\nclient_id = "kong"\ntls_client_auth_cert = "certs/client.crt"\ntls_client_auth_key = "/abs/client.key"`,
    );
    expect(c.tls_client_auth_cert).toBe("/etc/gw/certs/client.crt");
    expect(c.tls_client_auth_key).toBe("/abs/client.key");
  });

  it("leaves a Basic header to client_credentials when that method reads headers", () => {
    expect(passwordParamTypes(oidcConfig(`auth_methods = ["client_credentials", "password"]\nclient_id = "kong"`))).toEqual(["query", "body"]);
    expect(
      passwordParamTypes(
        oidcConfig(`auth_methods = ["password", "client_credentials"]\nclient_id = "kong"\nclient_credentials_param_type = ["body"]`),
      ),
    ).toEqual(["header", "query", "body"]);
    expect(passwordParamTypes(oidcConfig(`auth_methods = ["password"]\nclient_id = "kong"`))).toEqual(["header", "query", "body"]);
  });
});

describe("upstream-oauth", () => {
  it("uses Kong's tables and defaults (scopes none, Authorization, purge on 401)", () => {
    const c = uoConfig(`[plugins.config.oauth]\ntoken_endpoint = "https://idp.example/token"\nclient_id = "gw"\nclient_secret = "s"`);
    expect(c.oauth.grant_type).toBe("client_credentials");
    expect(c.oauth.scopes).toEqual([]);
    expect(c.cache).toEqual({ default_ttl: 3600, eagerly_expire: 5 });
    expect(c.behavior).toEqual({ upstream_access_token_header_name: "Authorization", purge_token_on_upstream_status_codes: [401] });
    expect(c.client.ssl_verify).toBe(true);
    expect(authMethod(c)).toBe("client_secret_post");
  });

  it("picks private_key_jwt without a secret, tls_client_auth with a certificate", () => {
    expect(authMethod(uoConfig(`[plugins.config.oauth]\nissuer = "https://idp.example"\nclient_id = "gw"`))).toBe("private_key_jwt");
    const tls = uoConfig(
      `[plugins.config.oauth]\nissuer = "https://idp.example"\nclient_id = "gw"\n[plugins.config.client]\ntls_client_auth_cert = "c.crt"\ntls_client_auth_key = "c.key"`,
    );
    expect(authMethod(tls)).toBe("tls_client_auth");
    expect(tls.client.tls_client_auth_cert).toBe("/etc/gw/c.crt");
  });

  it.each([
    [
      `[plugins.config.oauth]\nclient_id = "gw"`,
      "plugins[0].config.oauth.token_endpoint: missing required key: expected 'oauth.token_endpoint' or 'oauth.issuer'",
    ],
    [`[plugins.config.oauth]\nissuer = "https://idp.example"`, "plugins[0].config.oauth.client_id: missing required key"],
    [
      `[plugins.config.oauth]\nissuer = "https://idp.example"\nclient_id = "gw"\ngrant_type = "password"`,
      "plugins[0].config.oauth.username: missing required key",
    ],
    [
      `[plugins.config.oauth]\nissuer = "https://idp.example"\nclient_id = "gw"\n[plugins.config.client]\nauth_method = "client_secret_basic"`,
      "plugins[0].config.oauth.client_secret: missing required key: 'client.auth_method' \"client_secret_basic\" needs 'oauth.client_secret'",
    ],
    [
      `[plugins.config.oauth]\nissuer = "https://idp.example"\nclient_id = "gw"\n[plugins.config.client]\nauth_method = "self_signed_tls_client_auth"`,
      "plugins[0].config.client.tls_client_auth_cert: missing required key",
    ],
    [
      `[plugins.config.oauth]\nissuer = "https://idp.example"\nclient_id = "gw"\n[plugins.config.behavior]\nupstream_access_token_header_name = "bad header"`,
      "plugins[0].config.behavior.upstream_access_token_header_name",
    ],
    [
      `[plugins.config.oauth]\nissuer = "https://idp.example"\nclient_id = "gw"\n[plugins.config.client]\nauth_metod = "none"`,
      'plugins[0].config.client.auth_metod: unknown key (did you mean "auth_method"?)',
    ],
  ])("refuses a bad config, naming the key (%#)", (tables, message) => {
    expect(errorOf(upstreamOauth(tables))).toContain(message);
  });
});
