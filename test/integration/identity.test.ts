/**
 * The gateway's own identity, end to end against the real IdP (oidc-provider) and the real
 * gateway (the compiled binary unless GATEWAY_RUNTIME says otherwise):
 *
 * - the IdP downloads the gateway's JWKS (GET /openid-connect/jwks) to verify its private_key_jwt
 *   assertions, and rotation (DELETE /openid-connect/jwks) keeps working;
 * - the password grant (john/doe) and token introspection as the gateway's own client;
 * - tls_client_auth over mTLS with the JohnDoe certificate, refused with another CA's;
 * - the keys file: 0600, never a private member published, an invalid one a start error.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { cert, CERTS_DIR, ensureCerts } from "../support/certs.ts";
import { SERVICE_SECRET, startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { tempFolders } from "../support/temp.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
/** The gateway's own confidential client, allowed the password grant. */
const GATEWAY = { id: "gateway", secret: "gateway-secret-0123456789" };
const SECRETS = [SERVICE_SECRET, GATEWAY.secret, "opaque-secret", "not-the-password"];

let idp: IdpProcess;
let upstream: EchoUpstream;
const gateways: GatewayProcess[] = [];
const tokensSeen = new Set<string>();
const keysFolder = tempFolders("gateway-keys-");

beforeAll(async () => {
  ensureCerts();
  upstream = startEchoUpstream();
  idp = await startIdpProcess({
    options: { extraClients: [{ client_id: GATEWAY.id, client_secret: GATEWAY.secret, grant_types: ["client_credentials", "password"] }] },
  });
});

afterAll(async () => {
  // Secrets, passwords, tokens and private keys never reach the gateway's log.
  for (const gw of gateways) {
    const log = gw.output.join("\n");
    for (const secret of SECRETS) expect(log).not.toContain(secret);
    expect(log).not.toContain(btoa("john:doe"));
    for (const token of tokensSeen) expect(log).not.toContain(token.slice(-40));
    expect(log).not.toContain('"d":');
    await gw.stop();
  }
  await idp?.stop();
  upstream?.stop();
});

async function gateway(plugin: string, extra = "", options: { files?: Record<string, string> } = {}): Promise<GatewayProcess> {
  const gw = await startGateway({
    config: simpleConfig(
      `${upstream.url}/anything`,
      `${extra}\n[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "${idp.issuer}"\n${plugin}`,
    ),
    ...options,
  });
  gateways.push(gw);
  return gw;
}

const basic = (id: string, secret: string) => `Basic ${btoa(`${id}:${secret}`)}`;
const payload = (jwt: string) => JSON.parse(atob(jwt.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")));

async function call(gw: GatewayProcess, init: RequestInit & { path?: string } = {}) {
  const res = await fetch(`${gw.proxyUrl}${init.path ?? "/anything"}`, init);
  const text = await res.text();
  let seen: { headers: Record<string, string>; args: Record<string, string> } | undefined;
  if (res.status === 200) {
    seen = JSON.parse(text);
    const auth = seen!.headers.authorization;
    if (auth?.startsWith("Bearer ")) tokensSeen.add(auth.slice(7));
  }
  return { status: res.status, headers: res.headers, text, upstream: seen };
}

const jwksFetches = async (clientId: string) => (await idp.stats()).clientJwksFetches[clientId] ?? 0;
const tokenCalls = async (clientId: string) => (await idp.stats()).token.byClient[clientId] ?? 0;
const jwks = async (gw: GatewayProcess) => (await (await fetch(`${gw.adminUrl}/openid-connect/jwks`)).json()) as { keys: Record<string, unknown>[] };

describe("private_key_jwt: the IdP verifies the gateway with the JWKS it downloads from it", () => {
  let gw: GatewayProcess;
  const client = "gateway-pkjwt";
  beforeAll(async () => {
    // The IdP's `kong` client, registered once the gateway's admin port is known.
    gw = await gateway(`auth_methods = ["password"]\nclient_id = "${client}"\nclient_auth = "private_key_jwt"\ncache_tokens = false`);
    await idp.addClient({
      client_id: client,
      token_endpoint_auth_method: "private_key_jwt",
      jwks_uri: `${gw.adminUrl}/openid-connect/jwks`,
      grant_types: ["password"],
    });
  });

  it("gets john's token with the password grant: the IdP downloaded the gateway's keys once", async () => {
    const r = await call(gw, { headers: { authorization: basic("john", "doe") } });
    expect(r.status).toBe(200);
    const claims = payload(r.upstream!.headers.authorization!.slice(7));
    expect(claims.sub).toBe("john");
    expect(claims.client_id).toBe(client);
    expect(await jwksFetches(client)).toBe(1);
    expect((await call(gw, { headers: { authorization: basic("john", "doe") } })).status).toBe(200);
    expect(await jwksFetches(client)).toBe(1);
  });

  it("answers a wrong password with 401 and a Basic challenge, having asked the IdP", async () => {
    const before = await tokenCalls(client);
    const r = await call(gw, { headers: { authorization: basic("john", "not-the-password") } });
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toBe('Basic realm="oidc-gateway"');
    expect(await tokenCalls(client)).toBe(before + 1);
  });

  it("publishes public members only, with no-cache and an ETag that a poll revalidates", async () => {
    const res = await fetch(`${gw.adminUrl}/openid-connect/jwks`);
    expect(res.headers.get("cache-control")).toBe("no-cache");
    const text = await res.text();
    const { keys } = JSON.parse(text) as { keys: Record<string, unknown>[] };
    expect(keys.map((k) => k.alg)).toEqual(expect.arrayContaining(["RS256", "PS256", "ES256"]));
    for (const key of keys) {
      for (const member of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(member);
      expect(key.use).toBe("sig");
    }
    const again = await fetch(`${gw.adminUrl}/openid-connect/jwks`, { headers: { "if-none-match": res.headers.get("etag")! } });
    expect(again.status).toBe(304);
  });

  it("keeps its private keys in data/gateway-jwks.json next to gateway.toml, mode 0600", () => {
    const file = join(gw.dir, "data", "gateway-jwks.json");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(readFileSync(file, "utf8")) as { keys: Record<string, unknown>[] };
    expect(stored.keys.every((k) => typeof k.d === "string")).toBe(true);
  });

  it("keeps working after DELETE /openid-connect/jwks: new keys sign at once, the old ones stay published, the IdP refetches for the new kid", async () => {
    const before = await jwks(gw);
    const rotated = await fetch(`${gw.adminUrl}/openid-connect/jwks`, { method: "DELETE" });
    expect(rotated.status).toBe(204);
    const after = await jwks(gw);
    const oldKids = before.keys.map((k) => k.kid);
    const newKids = after.keys.map((k) => k.kid).filter((kid) => !oldKids.includes(kid));
    expect(newKids).toHaveLength(before.keys.length);
    expect(after.keys.map((k) => k.kid)).toEqual(expect.arrayContaining(oldKids));
    // As Keycloak does: keys cached by the IdP, refetched when an assertion names an unknown kid.
    await idp.refreshClientJwks(client);
    const downloads = await jwksFetches(client);
    const r = await call(gw, { headers: { authorization: basic("john", "doe") } });
    expect(r.status).toBe(200);
    expect(await jwksFetches(client)).toBe(downloads + 1);
    expect(payload(r.upstream!.headers.authorization!.slice(7)).sub).toBe("john");
  });
});

describe("the keys file", () => {
  it("is a start error naming keys.jwks_file when invalid, and is left as it was", async () => {
    const broken = '{"keys": [{"kty": "RSA", "alg": "RS256"}]}';
    const gw = await startGateway({
      config: simpleConfig(`${upstream.url}/anything`, `[keys]\njwks_file = "jwks.json"`),
      files: { "jwks.json": broken },
      waitForAdmin: false,
    });
    const code = await gw.exited;
    expect(code).toBe(1);
    const output = gw.output.join("\n");
    expect(output).toContain("keys.jwks_file");
    expect(output).toContain("jwks.json");
    expect(output).toContain("never replaces it");
    expect(readFileSync(join(gw.dir, "jwks.json"), "utf8")).toBe(broken);
  });

  it("survives a restart: the same public keys, the rotated-out ones still within rotation_grace", async () => {
    const file = join(keysFolder(), "jwks.json");
    const config = simpleConfig(`${upstream.url}/anything`, `[keys]\njwks_file = "${file}"\nrotation_grace = 600`);
    const first = await startGateway({ config });
    const original = (await jwks(first)).keys.map((k) => k.kid);
    expect((await fetch(`${first.adminUrl}/openid-connect/jwks`, { method: "DELETE" })).status).toBe(204);
    const rotated = (await jwks(first)).keys.map((k) => k.kid);
    expect(await first.stop()).toBe(0);
    const second = await startGateway({ config });
    gateways.push(second);
    const after = (await jwks(second)).keys.map((k) => k.kid);
    expect(after).toEqual(rotated);
    expect(after).toEqual(expect.arrayContaining(original));
    expect(after.length).toBe(2 * original.length);
  });

  it("is published on the proxy listener at [keys] publish_path, before routing and without plugins", async () => {
    const gw = await gateway(`auth_methods = ["client_credentials"]`, `[keys]\npublish_path = "/.well-known/gateway-jwks.json"`);
    const res = await fetch(`${gw.proxyUrl}/.well-known/gateway-jwks.json`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { keys: Record<string, unknown>[] };
    expect(body).toEqual(await jwks(gw));
    expect((await call(gw)).status).toBe(401); // everything else still goes through the plugin
  });
});

describe("start errors name the key", () => {
  it.each([
    ["private_key_jwt with a client_jwk the key file does not hold", `client_jwk = "no-such-kid"`, "client_jwk"],
    [
      "a tls_client_auth_cert that cannot be read",
      `client_auth = "tls_client_auth"\ntls_client_auth_cert = "missing.crt"\ntls_client_auth_key = "missing.key"`,
      "tls_client_auth_cert",
    ],
    ["a certificate without its key", `tls_client_auth_cert = "client.crt"`, "tls_client_auth_key"],
    ["an unknown client_auth", `client_auth = "client_secret_magic"`, "client_auth"],
    ["client_secret_jwt without a client_secret", `client_auth = "client_secret_jwt"`, "client_secret"],
    ["an HS client_alg for private_key_jwt", `client_alg = "HS256"`, "client_alg"],
  ])("%s", async (_what, extra, key) => {
    const gw = await startGateway({
      config: simpleConfig(
        `${upstream.url}/anything`,
        `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "${idp.issuer}"\nauth_methods = ["password"]\nclient_id = "kong"\n${extra}`,
      ),
      waitForAdmin: false,
    });
    expect(await gw.exited).toBe(1);
    expect(gw.output.join("\n")).toContain(key);
  });
});

describe("the password grant and client credentials side by side", () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await gateway(
      `auth_methods = ["client_credentials", "password"]\nclient_id = "${GATEWAY.id}"\nclient_secret = "${GATEWAY.secret}"\nclient_auth = "client_secret_basic"`,
    );
  });

  it("gives a Basic header to client credentials, never to the password grant", async () => {
    const service = await call(gw, { headers: { authorization: basic("service", SERVICE_SECRET) } });
    expect(service.status).toBe(200);
    expect(payload(service.upstream!.headers.authorization!.slice(7)).client_id).toBe("service");
    const before = await idp.stats();
    const john = await call(gw, { headers: { authorization: basic("john", "doe") } });
    expect(john.status).toBe(401);
    const after = await idp.stats();
    expect(after.token.byGrant.password ?? 0).toBe(before.token.byGrant.password ?? 0);
  });

  it("takes a user's credentials from the body or query, and hides them from the upstream", async () => {
    const r = await call(gw, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "username=john&password=doe&keep=1",
    });
    expect(r.status).toBe(200);
    expect(payload(r.upstream!.headers.authorization!.slice(7)).sub).toBe("john");
    expect((r.upstream as unknown as { data: string }).data).toBe("keep=1");
    const q = await call(gw, { path: "/anything?username=john&password=doe&x=y" });
    expect(q.status).toBe(200);
    expect(q.upstream!.args).toEqual({ x: "y" });
  });
});

describe("introspection of opaque tokens", () => {
  let gw: GatewayProcess;
  let uncached: GatewayProcess;
  beforeAll(async () => {
    const plugin = `auth_methods = ["introspection"]\nclient_id = "service"\nclient_secret = "${SERVICE_SECRET}"`;
    gw = await gateway(plugin);
    uncached = await gateway(`${plugin}\ncache_introspection = false`);
  });

  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

  it("lets an active token through to the upstream, and answers the repeat from the cache", async () => {
    const { access_token } = await idp.token("opaque", "opaque-secret");
    expect(access_token.split(".")).toHaveLength(1);
    tokensSeen.add(access_token);
    const before = (await idp.stats()).introspection;
    const r = await call(gw, bearer(access_token));
    expect(r.status).toBe(200);
    expect(r.upstream!.headers.authorization).toBe(`Bearer ${access_token}`);
    expect((await call(gw, bearer(access_token))).status).toBe(200);
    expect((await idp.stats()).introspection).toBe(before + 1);
  });

  it("refuses a token the IdP does not know with 401 invalid_token", async () => {
    const r = await call(gw, bearer("not-a-token-the-idp-issued"));
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toContain('error="invalid_token"');
  });

  it("refuses a revoked token (introspected on every request with cache_introspection = false)", async () => {
    const { access_token } = await idp.token("opaque", "opaque-secret");
    tokensSeen.add(access_token);
    expect((await call(uncached, bearer(access_token))).status).toBe(200);
    const revoke = await fetch(`${idp.issuer}/protocol/openid-connect/revoke`, {
      method: "POST",
      headers: { authorization: basic("opaque", "opaque-secret"), "content-type": "application/x-www-form-urlencoded" },
      body: `token=${access_token}`,
    });
    expect(revoke.status).toBe(200);
    expect((await call(uncached, bearer(access_token))).status).toBe(401);
  });

  it("leaves JWTs to bearer, unless introspect_jwt_tokens: then the IdP is asked about them too (this IdP cannot introspect its JWTs: a 503 of the gateway)", async () => {
    const plugin = `auth_methods = ["bearer", "introspection"]\nclient_id = "${GATEWAY.id}"\nclient_secret = "${GATEWAY.secret}"`;
    const local = await gateway(plugin);
    const asking = await gateway(`${plugin}\nintrospect_jwt_tokens = true`);
    const { access_token } = await idp.token("service", SERVICE_SECRET);
    tokensSeen.add(access_token);
    const before = (await idp.stats()).introspection;
    expect((await call(local, bearer(access_token))).status).toBe(200);
    expect((await idp.stats()).introspection).toBe(before);
    // oidc-provider answers unsupported_token_type for its JWT access tokens (Keycloak introspects them).
    expect((await call(asking, bearer(access_token))).status).toBe(503);
    expect((await idp.stats()).introspection).toBe(before + 1);
  });

  it("asks for a token without credentials with a Bearer challenge", async () => {
    const r = await call(gw);
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toBe('Bearer realm="oidc-gateway"');
  });
});

describe("audience_required and scopes_required apply whatever the method", () => {
  const introspection = `auth_methods = ["introspection"]\nclient_id = "service"\nclient_secret = "${SERVICE_SECRET}"`;
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
  /** An opaque token of the `opaque` client, with `scope` when given. */
  const opaque = async (scope?: string) => {
    const token = (await idp.token("opaque", "opaque-secret", { scope })).access_token;
    tokensSeen.add(token);
    return token;
  };
  const insufficientScope = (r: { status: number; headers: Headers }, scope: string) => {
    expect(r.status).toBe(403);
    expect(r.headers.get("www-authenticate")).toBe(
      `Bearer realm="oidc-gateway", error="insufficient_scope", error_description="the token lacks a required scope ('scopes_required')", scope="${scope}"`,
    );
  };
  const invalidAudience = (r: { status: number; headers: Headers }) => {
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toContain('error="invalid_token"');
    expect(r.headers.get("www-authenticate")).toContain("audience_required");
  };

  it("introspection: a token without a scope of scopes_required is 403 insufficient_scope, one with it passes", async () => {
    const gw = await gateway(`${introspection}\nscopes_required = ["api"]`);
    insufficientScope(await call(gw, bearer(await opaque())), "api");
    insufficientScope(await call(gw, bearer(await opaque("email"))), "api");
    expect((await call(gw, bearer(await opaque("api email")))).status).toBe(200);
  });

  it("introspection: a token for another audience is 401 invalid_token, one for the required audience passes", async () => {
    const other = await gateway(`${introspection}\naudience_required = ["https://other.example"]`);
    invalidAudience(await call(other, bearer(await opaque())));
    const ours = await gateway(`${introspection}\naudience_required = ["http://localhost:8000"]`);
    expect((await call(ours, bearer(await opaque()))).status).toBe(200);
  });

  it("client_credentials: the token the gateway got for the caller must have the scopes and audience too", async () => {
    const service = { headers: { authorization: basic("service", SERVICE_SECRET) } };
    insufficientScope(await call(await gateway(`scopes_required = ["api"]`), service), "api");
    expect((await call(await gateway(`scopes_required = ["api"]\nscopes = ["api"]`), service)).status).toBe(200);
    invalidAudience(await call(await gateway(`audience_required = ["https://other.example"]`), service));
  });

  it("client_credentials: an opaque token (no claims to look at) fails a configured check", async () => {
    const opaqueClient = { headers: { authorization: basic("opaque", "opaque-secret") } };
    expect((await call(await gateway(""), opaqueClient)).status).toBe(200);
    insufficientScope(await call(await gateway(`scopes_required = ["api"]`), opaqueClient), "api");
    invalidAudience(await call(await gateway(`audience_required = ["http://localhost:8000"]`), opaqueClient));
  });
});

describe("tls_client_auth over mutual TLS (an https IdP)", () => {
  let tlsIdp: IdpProcess;
  beforeAll(async () => {
    tlsIdp = await startIdpProcess({
      options: { tls: { cert: `${CERTS_DIR}/gateway.crt`, key: `${CERTS_DIR}/gateway.key`, ca: `${CERTS_DIR}/ca.crt` } },
      ca: cert("ca.crt"),
    });
  });
  afterAll(async () => {
    await tlsIdp?.stop();
  });

  const mtlsGateway = async (name: string) => {
    const gw = await startGateway({
      config: simpleConfig(
        `${upstream.url}/anything`,
        `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "${tlsIdp.issuer}"\nauth_methods = ["password"]\nclient_id = "client-tls-auth"\nclient_auth = "tls_client_auth"\ntls_client_auth_cert = "${CERTS_DIR}/${name}.crt"\ntls_client_auth_key = "${CERTS_DIR}/${name}.key"`,
      ).replace("[server]\n", `[server]\ntrusted_certificates = ["${CERTS_DIR}/ca.crt"]\n`),
    });
    gateways.push(gw);
    return gw;
  };

  it("gets john's token with the JohnDoe certificate", async () => {
    const gw = await mtlsGateway("client");
    const r = await call(gw, { headers: { authorization: basic("john", "doe") } });
    expect(r.status).toBe(200);
    const claims = payload(r.upstream!.headers.authorization!.slice(7));
    expect(claims.client_id).toBe("client-tls-auth");
    expect(claims.sub).toBe("john");
  });

  it("is refused with other-client.crt (another CA): a 503 of the gateway, never a 401", async () => {
    const gw = await mtlsGateway("other-client");
    const before = (await tlsIdp.stats()).token.byStatus["401"] ?? 0;
    const r = await call(gw, { headers: { authorization: basic("john", "doe") } });
    expect(r.status).toBe(503);
    expect((await tlsIdp.stats()).token.byStatus["401"] ?? 0).toBe(before + 1);
    expect(gw.logs().some((l) => l.level === "error" && String(l.detail ?? "").includes("invalid_client"))).toBe(true);
  });
});
