/**
 * Every `client_auth` method against the real IdP (oidc-provider over https with mutual TLS):
 * the gateway's client gets tokens with the client credentials and password grants and
 * introspects an opaque token; the IdP downloads the gateway's public keys for private_key_jwt;
 * the IdP refuses a certificate from another CA.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { join } from "node:path";
import type { AuthorizationServer } from "oauth4webapi";
import { AuthError, IdpError } from "../../src/errors.ts";
import { jwksResponse } from "../../src/keys/admin.ts";
import { FileKeyStore } from "../../src/keys/file-store.ts";
import { createLogger } from "../../src/log.ts";
import { createGatewayClient, type ClientAuthSettings } from "../../src/oidc/client/client-auth.ts";
import { introspectToken, requestGrant } from "../../src/oidc/client/client-requests.ts";
import { createIdpFetch, getJson } from "../../src/oidc/client/outbound.ts";
import { bunRuntime } from "../../src/runtime/bun.ts";
import { cert, CERTS_DIR, ensureCerts } from "../support/certs.ts";
import { startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { tempFolders } from "../support/temp.ts";

let idp: IdpProcess;
let as: AuthorizationServer;
let keys: FileKeyStore;
let jwksServer: ReturnType<typeof Bun.serve>;
const ca = () => [cert("ca.crt")];
const keyFolder = tempFolders("ca-idp-");
const fetch = () => createIdpFetch({ runtime: bunRuntime, trustedCertificates: ca() }, { timeout: 5000, sslVerify: true });
const options = { allowHttp: false, timeout: 5000 };

beforeAll(async () => {
  ensureCerts();
  keys = new FileKeyStore({
    runtime: bunRuntime,
    file: join(keyFolder(), "jwks.json"),
    rotationGrace: 60,
    log: createLogger("error", () => {}),
    algorithms: ["RS256", "ES256"],
    watch: false,
  });
  // The gateway's JWKS endpoint, as the IdP sees it.
  jwksServer = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: async (req) => jwksResponse(req, await keys.publicJwks()) });
  idp = await startIdpProcess({
    options: { tls: { cert: `${CERTS_DIR}/gateway.crt`, key: `${CERTS_DIR}/gateway.key`, ca: `${CERTS_DIR}/ca.crt` } },
    ca: cert("ca.crt"),
  });
  await idp.addClient({
    client_id: "pkjwt",
    token_endpoint_auth_method: "private_key_jwt",
    jwks_uri: `http://127.0.0.1:${jwksServer.port}/jwks`,
    grant_types: ["client_credentials", "password"],
  });
  await idp.addClient({
    client_id: "post",
    client_secret: "post-secret-0123456789",
    token_endpoint_auth_method: "client_secret_post",
    grant_types: ["client_credentials", "password"],
  });
  await idp.addClient({ client_id: "public", token_endpoint_auth_method: "none", grant_types: ["password"] });
  as = (await getJson(fetch(), `${idp.issuer}/.well-known/openid-configuration`, "discovery document", 5000)).json as unknown as AuthorizationServer;
}, 30_000);

afterAll(async () => {
  await idp?.stop();
  jwksServer?.stop(true);
  keys?.close();
});

const settings = (over: Partial<ClientAuthSettings>): ClientAuthSettings => ({
  clientId: "service",
  methods: ["client_secret_basic"],
  alg: "RS256",
  tlsVerify: true,
  assertionAudience: "issuer",
  timeout: 5000,
  ...over,
});

const client = (over: Partial<ClientAuthSettings>) =>
  createGatewayClient(settings(over), { ctx: { runtime: bunRuntime, trustedCertificates: ca(), keys }, fetch: fetch(), where: "test" });
const payload = (jwt: string) => JSON.parse(atob(jwt.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")));
const mtlsFiles = (name: string) => ({ tlsCertFile: `${CERTS_DIR}/${name}.crt`, tlsKeyFile: `${CERTS_DIR}/${name}.key` });

describe("each client authentication method against the real IdP", () => {
  it.each([
    ["client_secret_basic", { clientId: "service", clientSecret: "cf4c655a-0622-4ce6-a0de-d3353ef0b714", methods: ["client_secret_basic"] }],
    ["client_secret_post", { clientId: "post", clientSecret: "post-secret-0123456789", methods: ["client_secret_post"] }],
    ["private_key_jwt (RS256)", { clientId: "pkjwt", methods: ["private_key_jwt"], alg: "RS256" }],
    [
      "private_key_jwt (ES256, aud = token endpoint)",
      { clientId: "pkjwt", methods: ["private_key_jwt"], alg: "ES256", assertionAudience: "token_endpoint" },
    ],
    ["tls_client_auth (the JohnDoe certificate)", { clientId: "client-tls-auth", methods: ["tls_client_auth"], ...mtlsFiles("client") }],
    ["self_signed_tls_client_auth", { clientId: "client-self-signed", methods: ["self_signed_tls_client_auth"], ...mtlsFiles("self-signed-client") }],
  ] as [string, Partial<ClientAuthSettings>][])("%s gets a token with the client credentials grant", async (_name, over) => {
    const c = await client(over);
    const token = await requestGrant(c.call(as, "token_endpoint"), { type: "client_credentials" }, options);
    const claims = payload(token.access_token);
    expect(claims.client_id).toBe(over.clientId!);
    expect(claims.iss).toBe(idp.issuer);
  });

  it("the IdP downloaded the gateway's JWKS to verify private_key_jwt", async () => {
    expect((await idp.stats()).clientJwksFetches.pkjwt).toBeGreaterThanOrEqual(1);
  });

  it.each([
    ["client_secret_post", { clientId: "post", clientSecret: "post-secret-0123456789", methods: ["client_secret_post"] }],
    ["private_key_jwt", { clientId: "pkjwt", methods: ["private_key_jwt"] }],
    ["tls_client_auth", { clientId: "client-tls-auth", methods: ["tls_client_auth"], ...mtlsFiles("client") }],
    ["none", { clientId: "public", methods: ["none"] }],
  ] as [string, Partial<ClientAuthSettings>][])(
    "%s gets john's token with the password grant, and a wrong password is the caller's 401",
    async (_name, over) => {
      const c = await client(over);
      const call = c.call(as, "token_endpoint");
      const token = await requestGrant(call, { type: "password", username: "john", password: "doe" }, options);
      expect(payload(token.access_token).sub).toBe("john");
      const wrong = await requestGrant(call, { type: "password", username: "john", password: "not-doe" }, options).catch((e) => e);
      expect(wrong).toBeInstanceOf(AuthError);
      expect(wrong.status).toBe(401);
    },
  );

  it("tls_client_auth with a certificate of another CA is refused by the IdP: the gateway's problem (503)", async () => {
    const c = await client({ clientId: "client-tls-auth", methods: ["tls_client_auth"], ...mtlsFiles("other-client") });
    const error = await requestGrant(c.call(as, "token_endpoint"), { type: "client_credentials" }, options).catch((e) => e);
    expect(error).toBeInstanceOf(IdpError);
    expect(error.status).toBe(503);
    expect(error.detail).toContain("invalid_client");
  });

  it("private_key_jwt and tls_client_auth introspect an opaque token: active, then inactive once revoked", async () => {
    const opaque = await idp.token("opaque", "opaque-secret");
    expect(opaque.access_token.split(".")).toHaveLength(1);
    for (const over of [
      { clientId: "pkjwt", methods: ["private_key_jwt"] },
      { clientId: "client-tls-auth", methods: ["tls_client_auth"], ...mtlsFiles("client") },
    ] as Partial<ClientAuthSettings>[]) {
      const c = await client(over);
      const result = await introspectToken(c.call(as, "introspection_endpoint"), opaque.access_token, { ...options, hint: "access_token" });
      expect(result.active).toBe(true);
      expect(result.client_id).toBe("opaque");
    }
    const revoke = await globalThis.fetch(`${idp.issuer}/protocol/openid-connect/revoke`, {
      method: "POST",
      headers: { authorization: `Basic ${btoa("opaque:opaque-secret")}`, "content-type": "application/x-www-form-urlencoded" },
      body: `token=${opaque.access_token}`,
      tls: { ca: ca() },
    } as RequestInit);
    expect(revoke.status).toBe(200);
    const c = await client({ clientId: "pkjwt", methods: ["private_key_jwt"] });
    expect((await introspectToken(c.call(as, "introspection_endpoint"), opaque.access_token, options)).active).toBe(false);
  });
});
