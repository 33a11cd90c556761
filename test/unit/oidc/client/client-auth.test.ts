/**
 * The gateway as a client of the IdP: what each `client_auth` method puts on the wire, which
 * endpoint it calls, and which configurations are refused at start (naming the key). The wire
 * format is specified with an injected fetch; client-auth-real-idp.test.ts runs every method
 * against the real IdP.
 */
import { afterEach, describe, expect, it } from "bun:test";
import { join } from "node:path";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import type { AuthorizationServer } from "oauth4webapi";
import { ConfigError } from "../../../../src/errors.ts";
import { AuthError, IdpError } from "../../../../src/errors.ts";
import { FileKeyStore } from "../../../../src/keys/file-store.ts";
import { clientAuthIssues, createGatewayClient, defaultClientAuth, type ClientAuthSettings } from "../../../../src/oidc/client/client-auth.ts";
import { introspectToken, requestGrant } from "../../../../src/oidc/client/client-requests.ts";
import { createLogger } from "../../../../src/log.ts";
import { bunRuntime } from "../../../../src/runtime/bun.ts";
import { CERTS_DIR, ensureCerts } from "../../../support/certs.ts";
import { tempFolders } from "../../../support/temp.ts";

const as: AuthorizationServer = {
  issuer: "https://idp.example/realms/master",
  token_endpoint: "https://idp.example/realms/master/token",
  introspection_endpoint: "https://idp.example/realms/master/introspect",
  mtls_endpoint_aliases: { token_endpoint: "https://mtls.idp.example/token", introspection_endpoint: "https://mtls.idp.example/introspect" },
};

const stores: FileKeyStore[] = [];
const keyFolder = tempFolders("ca-");
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

function keyStore(): FileKeyStore {
  const s = new FileKeyStore({
    runtime: bunRuntime,
    file: join(keyFolder(), "jwks.json"),
    rotationGrace: 60,
    log: createLogger("error", () => {}),
    algorithms: ["ES256", "EdDSA"],
    watch: false,
  });
  stores.push(s);
  return s;
}

interface Seen {
  url: string;
  headers: Headers;
  body: URLSearchParams;
}

/** A fetch that records the request and answers like a token endpoint. */
function recorder(answer: () => Response = () => Response.json({ access_token: "at", token_type: "Bearer", expires_in: 60 })) {
  const seen: Seen[] = [];
  const fetch = async (input: string | URL | Request, init?: RequestInit) => {
    seen.push({ url: String(input), headers: new Headers(init?.headers), body: new URLSearchParams(String(init?.body ?? "")) });
    return answer();
  };
  return { seen, fetch };
}

const base = (over: Partial<ClientAuthSettings>): ClientAuthSettings => ({
  clientId: "kong",
  methods: ["client_secret_basic"],
  alg: "ES256",
  tlsVerify: true,
  assertionAudience: "issuer",
  timeout: 1000,
  ...over,
});

async function client(over: Partial<ClientAuthSettings>, fetch = recorder().fetch, keys = keyStore()) {
  return createGatewayClient(base(over), { ctx: { runtime: bunRuntime, trustedCertificates: [], keys }, fetch, where: 'plugin "test"' });
}

describe("the schema's checks", () => {
  it("need client_secret for the secret methods, a certificate and key for mutual TLS, both halves of a key pair", () => {
    expect(clientAuthIssues({ methods: ["client_secret_post"] }).map((i) => i.key)).toEqual(["client_secret"]);
    expect(clientAuthIssues({ methods: ["tls_client_auth"] }).map((i) => i.key)).toEqual(["tls_client_auth_cert"]);
    expect(clientAuthIssues({ methods: ["private_key_jwt"], tlsCertFile: "c.pem" }).map((i) => i.key)).toEqual(["tls_client_auth_key"]);
    expect(clientAuthIssues({ methods: ["none"], tlsKeyFile: "k.pem" }).map((i) => i.key)).toEqual(["tls_client_auth_cert"]);
    expect(clientAuthIssues({ methods: ["private_key_jwt"], alg: "HS256" }).map((i) => i.key)).toEqual(["client_alg"]);
    expect(clientAuthIssues({ methods: ["client_secret_basic", "private_key_jwt"], clientSecret: "s" })).toEqual([]);
  });

  it("pick a method from what is configured when client_auth is not set", () => {
    expect(defaultClientAuth({ clientSecret: "s" })).toBe("client_secret_basic");
    expect(defaultClientAuth({ tlsCertFile: "c.pem" })).toBe("tls_client_auth");
    expect(defaultClientAuth({})).toBe("private_key_jwt");
  });
});

describe("start errors", () => {
  it("name tls_client_auth_cert when the certificate file cannot be read", async () => {
    const error = await client({ methods: ["tls_client_auth"], tlsCertFile: "/nonexistent/client.crt", tlsKeyFile: "/nonexistent/client.key" }).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/^plugin "test": tls_client_auth_cert: cannot read "\/nonexistent\/client.crt"/);
  });

  it("name tls_client_auth_key when the key file holds no private key", async () => {
    ensureCerts();
    const error = await client({ methods: ["tls_client_auth"], tlsCertFile: `${CERTS_DIR}/client.crt`, tlsKeyFile: `${CERTS_DIR}/client.crt` }).catch(
      (e) => e,
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain("tls_client_auth_key");
  });

  it("name client_jwk when private_key_jwt has no key of that kid", async () => {
    const error = await client({ methods: ["private_key_jwt"], kid: "not-a-kid" }).catch((e) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(/^plugin "test": client_jwk: no current key with "kid" "not-a-kid"/);
  });

  it("use the caller's key names (upstream-oauth's client.client_alg)", async () => {
    const keys = keyStore();
    const es = await keys.signingKey({ alg: "ES256" });
    const names = {
      client_id: "oauth.client_id",
      client_secret: "oauth.client_secret",
      client_auth: "client.auth_method",
      client_alg: "client.client_alg",
      client_jwk: "client.client_jwk",
      tls_client_auth_cert: "client.tls_client_auth_cert",
      tls_client_auth_key: "client.tls_client_auth_key",
    };
    const error = await client({ methods: ["private_key_jwt"], kid: es.kid, alg: "EdDSA", keyNames: names }, undefined, keys).catch((e) => e);
    expect(error.message).toContain("client.client_alg: ");
  });
});

describe("on the wire", () => {
  it("client_secret_basic sends the form-encoded id and secret in a Basic header (RFC 6749 §2.3.1)", async () => {
    const { seen, fetch } = recorder();
    const c = await client({ clientId: "my client", clientSecret: "s3cr:et", methods: ["client_secret_basic"] }, fetch);
    await requestGrant(c.call(as, "token_endpoint"), { type: "client_credentials" }, { allowHttp: false, timeout: 1000 });
    expect(seen[0]!.url).toBe(as.token_endpoint!);
    expect(seen[0]!.headers.get("authorization")).toBe(`Basic ${btoa("my+client:s3cr%3Aet")}`);
    expect(seen[0]!.body.get("grant_type")).toBe("client_credentials");
    expect(seen[0]!.body.has("client_secret")).toBe(false);
  });

  it("client_secret_post sends them in the body", async () => {
    const { seen, fetch } = recorder();
    const c = await client({ clientSecret: "s3cret", methods: ["client_secret_post"] }, fetch);
    await requestGrant(
      c.call(as, "token_endpoint"),
      { type: "password", username: "john", password: "doe" },
      { allowHttp: false, timeout: 1000, scopes: ["openid", "profile"] },
    );
    const body = seen[0]!.body;
    expect(Object.fromEntries(body)).toEqual({
      client_id: "kong",
      client_secret: "s3cret",
      grant_type: "password",
      username: "john",
      password: "doe",
      scope: "openid profile",
    });
    expect(seen[0]!.headers.has("authorization")).toBe(false);
  });

  it("private_key_jwt signs an RFC 7523 assertion: iss = sub = client_id, aud = the issuer, fresh jti, exp 60 s, kid and alg of the store's key", async () => {
    const { seen, fetch } = recorder();
    const keys = keyStore();
    const c = await client({ methods: ["private_key_jwt"], alg: "EdDSA" }, fetch, keys);
    const call = c.call(as, "token_endpoint");
    await requestGrant(call, { type: "client_credentials" }, { allowHttp: false, timeout: 1000 });
    await requestGrant(call, { type: "client_credentials" }, { allowHttp: false, timeout: 1000 });
    const [first, second] = seen.map((s) => s.body);
    expect(first!.get("client_assertion_type")).toBe("urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    expect(first!.get("client_id")).toBe("kong");
    const assertion = first!.get("client_assertion")!;
    const header = decodeProtectedHeader(assertion);
    const key = await keys.signingKey({ alg: "EdDSA" });
    expect(header).toMatchObject({ alg: "EdDSA", kid: key.kid });
    const { payload } = await jwtVerify(assertion, createLocalJWKSet(JSON.parse((await keys.publicJwks()).body)), {
      audience: as.issuer,
      issuer: "kong",
      subject: "kong",
    });
    expect(payload.exp! - payload.iat!).toBe(60);
    expect(typeof payload.jti).toBe("string");
    expect(payload.jti).not.toBe(JSON.parse(atob(second!.get("client_assertion")!.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))).jti);
  });

  it("private_key_jwt can address its assertion to the token endpoint", async () => {
    const { seen, fetch } = recorder();
    const c = await client({ methods: ["private_key_jwt"], assertionAudience: "token_endpoint" }, fetch);
    await requestGrant(c.call(as, "token_endpoint"), { type: "client_credentials" }, { allowHttp: false, timeout: 1000 });
    const payload = JSON.parse(atob(seen[0]!.body.get("client_assertion")!.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")));
    expect(payload.aud).toBe(as.token_endpoint);
  });

  it("private_key_jwt signs with the new key right after a rotation", async () => {
    const { seen, fetch } = recorder();
    const keys = keyStore();
    const c = await client({ methods: ["private_key_jwt"] }, fetch, keys);
    const call = c.call(as, "token_endpoint");
    await requestGrant(call, { type: "client_credentials" }, { allowHttp: false, timeout: 1000 });
    const rotation = await keys.rotate();
    await requestGrant(call, { type: "client_credentials" }, { allowHttp: false, timeout: 1000 });
    const kids = seen.map((s) => decodeProtectedHeader(s.body.get("client_assertion")!).kid);
    expect(rotation.retired).toContain(kids[0]!);
    expect(rotation.kids).toContain(kids[1]!);
  });

  it("tls_client_auth sends client_id only, to the discovered mTLS alias, over its own client (not the IdP fetch)", async () => {
    ensureCerts();
    const { seen, fetch } = recorder();
    const c = await client({ methods: ["tls_client_auth"], tlsCertFile: `${CERTS_DIR}/client.crt`, tlsKeyFile: `${CERTS_DIR}/client.key` }, fetch);
    const call = c.call(as, "token_endpoint");
    expect(call.url).toBe("https://mtls.idp.example/token");
    expect(call.fetch).not.toBe(fetch);
    expect(c.call(as, "introspection_endpoint").url).toBe("https://mtls.idp.example/introspect");
    expect(seen).toHaveLength(0);
  });

  it("mtls_token_endpoint overrides the alias; without an alias the plain endpoint is used", async () => {
    ensureCerts();
    const files = { tlsCertFile: `${CERTS_DIR}/client.crt`, tlsKeyFile: `${CERTS_DIR}/client.key` };
    const c = await client({
      methods: ["self_signed_tls_client_auth"],
      ...files,
      endpoints: { mtls_token_endpoint: "https://override.example/token" },
    });
    expect(c.call(as, "token_endpoint").url).toBe("https://override.example/token");
    const plain = await client({ methods: ["tls_client_auth"], ...files });
    expect(plain.call({ issuer: as.issuer, token_endpoint: as.token_endpoint }, "token_endpoint").url).toBe(as.token_endpoint!);
  });

  it("none sends client_id only", async () => {
    const { seen, fetch } = recorder();
    const c = await client({ methods: ["none"] }, fetch);
    await requestGrant(c.call(as, "token_endpoint"), { type: "client_credentials" }, { allowHttp: false, timeout: 1000 });
    expect(Object.fromEntries(seen[0]!.body)).toEqual({ client_id: "kong", grant_type: "client_credentials" });
  });

  it("takes the first of several methods that the IdP lists as supported", async () => {
    const c = await client({ clientSecret: "s", methods: ["private_key_jwt", "client_secret_post"] });
    expect(c.call({ ...as, token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"] }, "token_endpoint").method).toBe(
      "client_secret_post",
    );
    expect(c.call({ ...as, token_endpoint_auth_methods_supported: ["private_key_jwt"] }, "token_endpoint").method).toBe("private_key_jwt");
    expect(c.call(as, "token_endpoint").method).toBe("private_key_jwt");
  });

  it("says which setting is missing when the IdP has no introspection endpoint", async () => {
    const c = await client({ clientSecret: "s" });
    const error = (() => {
      try {
        c.call({ issuer: as.issuer, token_endpoint: as.token_endpoint }, "introspection_endpoint");
      } catch (e) {
        return e as IdpError;
      }
    })();
    expect(error).toBeInstanceOf(IdpError);
    expect(error!.detail).toContain("'introspection_endpoint'");
  });
});

describe("whose fault a refusal is", () => {
  const json = (status: number, body: unknown) => () =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

  it("a user's wrong password (invalid_grant, 400 or Keycloak's 401) is the caller's: 401", async () => {
    for (const status of [400, 401]) {
      const c = await client(
        { clientSecret: "s" },
        recorder(json(status, { error: "invalid_grant", error_description: "Invalid user credentials" })).fetch,
      );
      const error = await requestGrant(
        c.call(as, "token_endpoint"),
        { type: "password", username: "john", password: "wrong-password" },
        { allowHttp: false, timeout: 1000 },
      ).catch((e) => e);
      expect(error).toBeInstanceOf(AuthError);
      expect(error.status).toBe(401);
      expect(error.error).toBe("invalid_grant");
      expect(JSON.stringify({ m: error.message, d: error.description })).not.toContain("wrong-password");
    }
  });

  it.each([
    ["invalid_client", 401],
    ["unauthorized_client", 400],
    ["invalid_scope", 400],
  ])("the IdP refusing the gateway's own client (%s) is ours: 503, never 401", async (code, status) => {
    const c = await client({ clientSecret: "s" }, recorder(json(status, { error: code })).fetch);
    const error = await requestGrant(
      c.call(as, "token_endpoint"),
      { type: "password", username: "john", password: "doe" },
      { allowHttp: false, timeout: 1000 },
    ).catch((e) => e);
    expect(error).toBeInstanceOf(IdpError);
    expect(error.status).toBe(503);
    expect(error.detail).toContain(`"kong"`);
    expect(error.detail).toContain(code);
  });

  it("an introspection endpoint that refuses the gateway is ours (503), one that fails is the IdP's (502)", async () => {
    const refusing = await client({ clientSecret: "s" }, recorder(json(401, { error: "invalid_client" })).fetch);
    expect(
      (await introspectToken(refusing.call(as, "introspection_endpoint"), "opaque", { allowHttp: false, timeout: 1000 }).catch((e) => e)).status,
    ).toBe(503);
    const failing = await client({ clientSecret: "s" }, recorder(() => new Response("boom", { status: 500 })).fetch);
    expect(
      (await introspectToken(failing.call(as, "introspection_endpoint"), "opaque", { allowHttp: false, timeout: 1000 }).catch((e) => e)).status,
    ).toBe(502);
    const noActive = await client({ clientSecret: "s" }, recorder(json(200, { sub: "x" })).fetch);
    expect(
      (await introspectToken(noActive.call(as, "introspection_endpoint"), "opaque", { allowHttp: false, timeout: 1000 }).catch((e) => e)).status,
    ).toBe(502);
  });

  it("introspection sends the token and Kong's token_type_hint", async () => {
    const { seen, fetch } = recorder(json(200, { active: false }));
    const c = await client({ clientSecret: "s" }, fetch);
    const result = await introspectToken(c.call(as, "introspection_endpoint"), "opaque-token", {
      allowHttp: false,
      timeout: 1000,
      hint: "access_token",
    });
    expect(result.active).toBe(false);
    expect(seen[0]!.url).toBe(as.introspection_endpoint!);
    expect(Object.fromEntries(seen[0]!.body)).toEqual({ token: "opaque-token", token_type_hint: "access_token" });
  });
});
