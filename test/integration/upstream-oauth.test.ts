/**
 * Kong's upstream-oauth plugin, end to end against the real IdP and the real gateway: the gateway
 * gets a token for itself with each client authentication method, caches it, refreshes it before
 * it expires, drops it when the upstream refuses it, and sends it to the upstream. It
 * authenticates nobody: in front of it, openid-connect decides who gets through.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { cert, CERTS_DIR, ensureCerts } from "../support/certs.ts";
import { SERVICE_SECRET, startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { oidcSuite } from "../support/oidc-suite.ts";

const CLIENTS = {
  basic: { id: "uo-basic", secret: "uo-basic-secret-0123456789" },
  post: { id: "uo-post", secret: "uo-post-secret-0123456789" },
  refresh: { id: "uo-refresh", secret: "uo-refresh-secret-0123456789" },
  purge: { id: "uo-purge", secret: "uo-purge-secret-0123456789" },
};
const SECRETS = [SERVICE_SECRET, ...Object.values(CLIENTS).map((c) => c.secret)];

beforeAll(() => {
  ensureCerts();
});
const { idp, upstream, gateways } = oidcSuite({
  idp: {
    options: {
      extraClients: [
        { client_id: CLIENTS.basic.id, client_secret: CLIENTS.basic.secret },
        { client_id: CLIENTS.post.id, client_secret: CLIENTS.post.secret, token_endpoint_auth_method: "client_secret_post" },
        { client_id: CLIENTS.refresh.id, client_secret: CLIENTS.refresh.secret },
        { client_id: CLIENTS.purge.id, client_secret: CLIENTS.purge.secret },
        { client_id: "uo-public", token_endpoint_auth_method: "none", grant_types: ["password"] },
      ],
    },
  },
  neverLogged: () => SECRETS,
});

async function gateway(plugins: string, options: { server?: string; idp?: IdpProcess } = {}): Promise<GatewayProcess> {
  let config = simpleConfig(upstream.url, plugins.replaceAll("{{issuer}}", (options.idp ?? idp).issuer));
  if (options.server) config = config.replace("[server]\n", `[server]\n${options.server}\n`);
  const gw = await startGateway({ config });
  gateways.push(gw);
  return gw;
}

const upstreamOauth = (oauth: string, client = "", rest = "") =>
  `[[plugins]]\nname = "upstream-oauth"\n[plugins.config.oauth]\nissuer = "{{issuer}}"\n${oauth}\n[plugins.config.client]\n${client}\n${rest}`;

const payload = (jwt: string) => JSON.parse(atob(jwt.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")));
const tokenCalls = async (clientId: string, from = idp) => (await from.stats()).token.byClient[clientId] ?? 0;

/** A request through the gateway; the token the upstream received. */
async function call(gw: GatewayProcess, init: RequestInit & { path?: string } = {}) {
  const res = await fetch(`${gw.proxyUrl}${init.path ?? "/anything"}`, init);
  const text = await res.text();
  const seen = res.status === 200 ? (JSON.parse(text) as { headers: Record<string, string> }) : undefined;
  return { status: res.status, text, authorization: seen?.headers.authorization };
}

describe("the gateway's token, with each client authentication method", () => {
  it("client_secret_basic: the upstream gets Bearer <the gateway's token>; the repeat comes from the cache", async () => {
    const gw = await gateway(
      upstreamOauth(`client_id = "${CLIENTS.basic.id}"\nclient_secret = "${CLIENTS.basic.secret}"`, `auth_method = "client_secret_basic"`),
    );
    const before = await tokenCalls(CLIENTS.basic.id);
    const first = await call(gw);
    expect(first.status).toBe(200);
    expect(payload(first.authorization!.slice(7)).client_id).toBe(CLIENTS.basic.id);
    const second = await call(gw);
    expect(second.authorization).toBe(first.authorization!);
    expect(await tokenCalls(CLIENTS.basic.id)).toBe(before + 1);
  });

  it("client_secret_post (Kong's default with a secret), with only a token_endpoint (no discovery)", async () => {
    const gw = await gateway(
      `[[plugins]]\nname = "upstream-oauth"\n[plugins.config.oauth]\ntoken_endpoint = "${idp.tokenEndpoint}"\nclient_id = "${CLIENTS.post.id}"\nclient_secret = "${CLIENTS.post.secret}"`,
    );
    const r = await call(gw);
    expect(r.status).toBe(200);
    expect(payload(r.authorization!.slice(7)).client_id).toBe(CLIENTS.post.id);
  });

  it("private_key_jwt: the IdP downloads the gateway's JWKS", async () => {
    const gw = await gateway(upstreamOauth(`client_id = "uo-pkjwt"`, `auth_method = "private_key_jwt"\nclient_alg = "ES256"`));
    await idp.addClient({ client_id: "uo-pkjwt", token_endpoint_auth_method: "private_key_jwt", jwks_uri: `${gw.adminUrl}/openid-connect/jwks` });
    const r = await call(gw);
    expect(r.status).toBe(200);
    expect(payload(r.authorization!.slice(7)).client_id).toBe("uo-pkjwt");
    expect((await idp.stats()).clientJwksFetches["uo-pkjwt"]).toBe(1);
  });

  it("none, with a configured user's password grant", async () => {
    const gw = await gateway(
      upstreamOauth(`grant_type = "password"\nclient_id = "uo-public"\nusername = "john"\npassword = "doe"`, `auth_method = "none"`),
    );
    const r = await call(gw);
    expect(r.status).toBe(200);
    const claims = payload(r.authorization!.slice(7));
    expect(claims.sub).toBe("john");
    expect(claims.client_id).toBe("uo-public");
  });

  describe("over mutual TLS (an https IdP)", () => {
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
    const trust = `trusted_certificates = ["${CERTS_DIR}/ca.crt"]`;
    const files = (name: string) => `tls_client_auth_cert = "${CERTS_DIR}/${name}.crt"\ntls_client_auth_key = "${CERTS_DIR}/${name}.key"`;

    it("tls_client_auth with the JohnDoe certificate", async () => {
      const gw = await gateway(upstreamOauth(`client_id = "client-tls-auth"`, `auth_method = "tls_client_auth"\n${files("client")}`), {
        server: trust,
        idp: tlsIdp,
      });
      const r = await call(gw);
      expect(r.status).toBe(200);
      expect(payload(r.authorization!.slice(7)).client_id).toBe("client-tls-auth");
    });

    it("self_signed_tls_client_auth with the self-signed certificate", async () => {
      const gw = await gateway(
        upstreamOauth(`client_id = "client-self-signed"`, `auth_method = "self_signed_tls_client_auth"\n${files("self-signed-client")}`),
        { server: trust, idp: tlsIdp },
      );
      const r = await call(gw);
      expect(r.status).toBe(200);
      expect(payload(r.authorization!.slice(7)).client_id).toBe("client-self-signed");
    });

    it("tls_client_auth with another CA's certificate: refused by the IdP, a 503 of the gateway", async () => {
      const gw = await gateway(upstreamOauth(`client_id = "client-tls-auth"`, `auth_method = "tls_client_auth"\n${files("other-client")}`), {
        server: trust,
        idp: tlsIdp,
      });
      expect((await call(gw)).status).toBe(503);
    });
  });
});

describe("the token's lifetime", () => {
  it("is refreshed in the background before it expires: no request waits for the IdP", async () => {
    await idp.setAccessTokenTtl(6);
    try {
      const gw = await gateway(
        upstreamOauth(
          `client_id = "${CLIENTS.refresh.id}"\nclient_secret = "${CLIENTS.refresh.secret}"`,
          "",
          `[plugins.config.cache]\neagerly_expire = 1`,
        ),
      );
      const first = await call(gw);
      expect(first.status).toBe(200);
      // Valid 5 s by the plugin's count, cached 4.5 s, refreshed after 80 % of that.
      await Bun.sleep(3800);
      const during = await call(gw);
      expect(during.authorization).toBe(first.authorization!);
      await Bun.sleep(300);
      const after = await call(gw);
      expect(after.authorization).not.toBe(first.authorization!);
      expect(await tokenCalls(CLIENTS.refresh.id)).toBe(2);
      const line = await gw.waitForLog((l) => l.event === "http.request" && l.upstream_token === "refresh");
      expect(line.status).toBe(200);
    } finally {
      await idp.setAccessTokenTtl(300);
    }
  });

  it("ends when the upstream answers 401 (purge_token_on_upstream_status_codes): the next request gets a new token", async () => {
    const gw = await gateway(upstreamOauth(`client_id = "${CLIENTS.purge.id}"\nclient_secret = "${CLIENTS.purge.secret}"`));
    const first = await call(gw);
    expect((await call(gw, { path: "/status/401" })).status).toBe(401);
    const next = await call(gw);
    expect(next.status).toBe(200);
    expect(next.authorization).not.toBe(first.authorization!);
    expect(await tokenCalls(CLIENTS.purge.id)).toBe(2);
  });
});

describe("failures are the gateway's, never the caller's", () => {
  it("a wrong client secret is a 503, and the IdP is not asked again for a few seconds", async () => {
    const gw = await gateway(
      upstreamOauth(`client_id = "${CLIENTS.basic.id}"\nclient_secret = "not-the-secret-0123"`, `auth_method = "client_secret_basic"`),
    );
    const before = await tokenCalls(CLIENTS.basic.id);
    expect((await call(gw)).status).toBe(503);
    expect((await call(gw)).status).toBe(503);
    expect(await tokenCalls(CLIENTS.basic.id)).toBe(before + 1);
    expect(gw.logs().some((l) => l.level === "error" && String(l.detail ?? "").includes(`"${CLIENTS.basic.id}"`))).toBe(true);
  });

  it("an IdP that is down is a 503", async () => {
    const gw = await gateway(
      `[[plugins]]\nname = "upstream-oauth"\n[plugins.config.oauth]\ntoken_endpoint = "http://127.0.0.1:1/token"\nclient_id = "x"\nclient_secret = "y"`,
    );
    expect((await call(gw)).status).toBe(503);
  });
});

describe("combined with openid-connect", () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await gateway(
      `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "{{issuer}}"\nauth_methods = ["client_credentials"]\n` +
        upstreamOauth(`client_id = "${CLIENTS.basic.id}"\nclient_secret = "${CLIENTS.basic.secret}"`, `auth_method = "client_secret_basic"`),
    );
  });

  it("refuses a caller without credentials before any token is fetched for the upstream", async () => {
    const before = await tokenCalls(CLIENTS.basic.id);
    expect((await call(gw)).status).toBe(401);
    expect(await tokenCalls(CLIENTS.basic.id)).toBe(before);
  });

  it("sends an authenticated caller's request with the gateway's token, not the caller's", async () => {
    const r = await call(gw, { headers: { authorization: `Basic ${btoa(`service:${SERVICE_SECRET}`)}` } });
    expect(r.status).toBe(200);
    expect(payload(r.authorization!.slice(7)).client_id).toBe(CLIENTS.basic.id);
  });

  it("never lets a caller's own upstream_access_token_header_name through, alone or repeated", async () => {
    const standalone = await gateway(
      upstreamOauth(`client_id = "${CLIENTS.basic.id}"\nclient_secret = "${CLIENTS.basic.secret}"`, `auth_method = "client_secret_basic"`),
    );
    const r = await call(standalone, {
      headers: [
        ["authorization", "Bearer forged"],
        ["authorization", "Bearer forged-too"],
      ],
    });
    expect(r.status).toBe(200);
    expect(r.authorization).not.toContain("forged");
    expect(payload(r.authorization!.slice(7)).client_id).toBe(CLIENTS.basic.id);
  });
});
