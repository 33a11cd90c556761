/**
 * A second, independent IdP: Glewlwyd 2.7 (Debian's package, an OpenID Provider in C) in front of
 * the real gateway, the compiled binary or GATEWAY_RUNTIME's. The README's client credentials curl
 * with the seed secret, a wrong secret, JWT and DPoP-bound tokens verified against Glewlwyd's keys,
 * introspection (JSON, and a signed answer the gateway refuses), and the gateway's own token with
 * private_key_jwt and client_secret_jwt. Its quirks are in docs/interop.md.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import * as https from "node:https";
import { join } from "node:path";
import { ensureCerts } from "../support/certs.ts";
import { makeProof, proofKey, type ProofKey } from "../support/dpop-proof.ts";
import { startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { GLEWLWYD_SCOPE, startGlewlwyd, type GlewlwydProcess } from "../support/glewlwyd-process.ts";
import { SERVICE_SECRET } from "../support/idp-process.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";
import { waitUntil } from "../support/wait.ts";

let gl: GlewlwydProcess;
/** Glewlwyd over https asking for client certificates (RFC 8705). */
let tlsGl: GlewlwydProcess;
let certs: string;
const JOHN_DOE_DN = "CN=JohnDoe,OU=IT"; // certs/client.crt, as GnuTLS writes it (RFC 4514)
let upstream: EchoUpstream;
let gw: GatewayProcess;
const tokensSeen = new Set<string>();

const HS_SECRET = "hs-secret-for-glewlwyd-0123456789-0123456789";

/** Route name → its plugin entry ({{issuer}} replaced). */
const ROUTES: Record<string, string> = {
  // The README's workflow; Glewlwyd refuses a token request without `scope`.
  "openid-connect": `name = "openid-connect"\n[plugins.config]\nissuer = "{{issuer}}"\nauth_methods = ["client_credentials"]\nscopes = ["${GLEWLWYD_SCOPE}"]`,
  bearer: `name = "openid-connect"\n[plugins.config]\nissuer = "{{issuer}}"\nauth_methods = ["bearer"]\naudience_required = ["${GLEWLWYD_SCOPE}"]`,
  dpop: `name = "openid-connect"\n[plugins.config]\nissuer = "{{issuer}}"\nauth_methods = ["bearer"]\nproof_of_possession_dpop = "strict"`,
  introspection: `name = "openid-connect"\n[plugins.config]\nissuer = "{{issuer}}"\nauth_methods = ["introspection"]\nclient_id = "service"\nclient_secret = "${SERVICE_SECRET}"\nclient_auth = "client_secret_basic"`,
  "introspection-jwt": `name = "openid-connect"\n[plugins.config]\nissuer = "{{issuer}}"\nauth_methods = ["introspection"]\nclient_id = "service"\nclient_secret = "${SERVICE_SECRET}"\nclient_auth = "client_secret_basic"\nintrospection_accept = "application/token-introspection+jwt"`,
  // The gateway's own token: Glewlwyd wants the assertion's `aud` to be its token endpoint.
  "private-key-jwt": `name = "upstream-oauth"\n[plugins.config.oauth]\nissuer = "{{issuer}}"\nclient_id = "gateway-pkjwt"\nscopes = ["${GLEWLWYD_SCOPE}"]\n[plugins.config.client]\nauth_method = "private_key_jwt"\nclient_alg = "ES256"\nclient_assertion_audience = "token_endpoint"`,
  "client-secret-jwt": `name = "upstream-oauth"\n[plugins.config.oauth]\nissuer = "{{issuer}}"\nclient_id = "gateway-hsjwt"\nclient_secret = "${HS_SECRET}"\nscopes = ["${GLEWLWYD_SCOPE}"]\n[plugins.config.client]\nauth_method = "client_secret_jwt"\nclient_secret_jwt_alg = "HS256"\nclient_assertion_audience = "token_endpoint"`,
  mtls: `name = "openid-connect"\n[plugins.config]\nissuer = "{{tls_issuer}}"\nauth_methods = ["bearer"]\nproof_of_possession_mtls = "strict"`,
  "tls-client-auth": `name = "upstream-oauth"\n[plugins.config.oauth]\nissuer = "{{tls_issuer}}"\nclient_id = "gateway-tls"\nscopes = ["${GLEWLWYD_SCOPE}"]\n[plugins.config.client]\nauth_method = "tls_client_auth"\ntls_client_auth_cert = "{{certs}}/client.crt"\ntls_client_auth_key = "{{certs}}/client.key"`,
};

function config(): string {
  const routes = Object.keys(ROUTES).map((name) => `[[routes]]\nname = "${name}"\nservice = "echo"\npaths = ["/${name}"]\n`);
  const fill = (entry: string) => entry.replaceAll("{{issuer}}", gl.issuer).replaceAll("{{tls_issuer}}", tlsGl.issuer).replaceAll("{{certs}}", certs);
  const plugins = Object.entries(ROUTES).map(([name, entry]) => `[[plugins]]\nroute = "${name}"\n${fill(entry)}\n`);
  return `[server]
proxy_listen = "127.0.0.1:{{proxy}}"
proxy_tls_listen = "127.0.0.1:{{proxy_tls}}"
admin_listen = "127.0.0.1:{{admin}}"
trusted_certificates = ["${certs}/ca.crt"]
shutdown_timeout = 2000

[server.tls]
cert = "${certs}/gateway.crt"
key = "${certs}/gateway.key"
client_ca = "${certs}/ca.crt"

[[services]]
name = "echo"
url = "${upstream.url}/anything"
read_timeout = 5000

${routes.join("\n")}
${plugins.join("\n")}`;
}

beforeAll(async () => {
  certs = ensureCerts();
  upstream = startEchoUpstream();
  gl = await startGlewlwyd();
  tlsGl = await startGlewlwyd({ tls: { cert: join(certs, "gateway.crt"), key: join(certs, "gateway.key"), ca: join(certs, "ca.crt") } });
  for (const client_id of ["cert-bound", "gateway-tls"]) {
    await tlsGl.addClient({ client_id, token_endpoint_auth_method: ["tls_client_auth"], tls_client_auth_subject_dn: JOHN_DOE_DN });
  }
  await gl.addClient({ client_id: "gateway-hsjwt", client_secret: HS_SECRET, token_endpoint_auth_method: ["client_secret_jwt"] });
  gw = await startGateway({ config: config() });
  // Glewlwyd downloads no http jwks_uri: the gateway's public keys are registered with the client.
  const jwks = await (await fetch(`${gw.adminUrl}/openid-connect/jwks`)).json();
  await gl.addClient({ client_id: "gateway-pkjwt", token_endpoint_auth_method: ["private_key_jwt"], jwks });
}, 30_000);

afterAll(async () => {
  if (gw) {
    const log = gw.output.join("\n");
    expect(log).not.toContain(SERVICE_SECRET);
    for (const token of tokensSeen) expect(log).not.toContain(token.slice(-40));
    await gw.stop();
  }
  await gl?.stop();
  await tlsGl?.stop();
  upstream?.stop();
});

const basic = (id: string, secret: string) => `Basic ${btoa(`${id}:${secret}`)}`;
const payload = (jwt: string) => JSON.parse(atob(jwt.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")));

async function call(path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${gw.proxyUrl}${path}`, { headers });
  const text = await res.text();
  const seen = res.status === 200 ? (JSON.parse(text) as { headers: Record<string, string> }) : undefined;
  const authorization = seen?.headers.authorization;
  if (authorization?.startsWith("Bearer ")) tokensSeen.add(authorization.slice(7));
  return { status: res.status, text, headers: res.headers, authorization, upstream: seen };
}

/** An https request with the JohnDoe client certificate. */
function mtlsRequest(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; text: string }> {
  return new Promise((ok, fail) => {
    const req = https.request(
      url,
      {
        method: init.method ?? "GET",
        headers: init.headers ?? {},
        ca: readFileSync(join(certs, "ca.crt")),
        cert: readFileSync(join(certs, "client.crt")),
        key: readFileSync(join(certs, "client.key")),
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => ok({ status: res.statusCode!, text }));
      },
    );
    req.on("error", fail);
    req.end(init.body);
  });
}

async function glewlwydToken(dpop?: string): Promise<{ access_token: string; token_type: string }> {
  const res = await gl.token("service", SERVICE_SECRET, dpop ? { headers: { dpop } } : {});
  expect(res.status).toBe(200);
  const body = (await res.json()) as { access_token: string; token_type: string };
  tokensSeen.add(body.access_token);
  return body;
}

describe("client credentials with the caller's Basic (the README's curl)", () => {
  it("passes the seed secret byte-identical: the upstream gets a Glewlwyd token issued to service", async () => {
    const r = await call("/openid-connect", { authorization: basic("service", SERVICE_SECRET) });
    expect(r.status).toBe(200);
    const claims = payload(r.authorization!.slice(7));
    expect(claims.iss).toBe(gl.issuer);
    expect(claims.client_id).toBe("service");
    expect(claims.aud).toBe(GLEWLWYD_SCOPE); // Glewlwyd puts the scope in `aud`
  });

  it("serves the repeat from the cache", async () => {
    const first = await call("/openid-connect", { authorization: basic("service", SERVICE_SECRET) });
    const second = await call("/openid-connect", { authorization: basic("service", SERVICE_SECRET) });
    expect(second.authorization).toBe(first.authorization!);
  });

  it("answers a wrong secret 401 with a challenge, though Glewlwyd says 403 with an empty body", async () => {
    const r = await call("/openid-connect", { authorization: basic("service", "not-the-secret") });
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toContain("realm=");
  });
});

describe("tokens Glewlwyd issued, presented to the gateway", () => {
  it("bearer: verifies the JWT against Glewlwyd's JWKS and its audience", async () => {
    const { access_token } = await glewlwydToken();
    expect((await call("/bearer", { authorization: `Bearer ${access_token}` })).status).toBe(200);
    expect((await call("/bearer", { authorization: `Bearer ${access_token.slice(0, -4)}AAAA` })).status).toBe(401);
  });

  describe("a DPoP-bound token (RFC 9449)", () => {
    let key: ProofKey;
    let token: string;
    beforeAll(async () => {
      key = await proofKey();
      const body = await glewlwydToken(await makeProof({ key, method: "POST", url: gl.tokenEndpoint }));
      expect(body.token_type.toLowerCase()).toBe("dpop");
      expect(payload(body.access_token).cnf.jkt).toBe(key.jkt);
      token = body.access_token;
    });

    it("passes with a proof from the bound key; the upstream gets Bearer", async () => {
      const proof = await makeProof({ key, url: `${gw.proxyUrl}/dpop`, accessToken: token });
      const r = await call("/dpop", { authorization: `DPoP ${token}`, dpop: proof });
      expect(r.status).toBe(200);
      expect(r.authorization).toBe(`Bearer ${token}`);
    });

    it("is refused with a proof from another key, and without a proof", async () => {
      const other = await proofKey();
      const proof = await makeProof({ key: other, url: `${gw.proxyUrl}/dpop`, accessToken: token });
      expect((await call("/dpop", { authorization: `DPoP ${token}`, dpop: proof })).status).toBe(401);
      expect((await call("/dpop", { authorization: `Bearer ${token}` })).status).toBe(401);
    });
  });

  it("introspection: the gateway asks Glewlwyd (client_secret_basic) and passes an active token", async () => {
    const { access_token } = await glewlwydToken();
    expect((await call("/introspection", { authorization: `Bearer ${access_token}` })).status).toBe(200);
    expect((await call("/introspection", { authorization: "Bearer not-a-token-glewlwyd-knows" })).status).toBe(401);
  });

  it("introspection answered as a signed JWT (RFC 9701): Glewlwyd's aud is the token's, not the gateway's client, so the answer is refused as the IdP's failure (502, logged), never a 401", async () => {
    const { access_token } = await glewlwydToken();
    const r = await call("/introspection-jwt", { authorization: `Bearer ${access_token}` });
    expect(r.status).toBe(502);
    expect(r.headers.get("www-authenticate")).toBeNull();
    // The error line may follow the answer: wait for it rather than for a fixed time.
    await waitUntil("the gateway to log the wrong aud", () => gw.output.some((l) => l.includes('its \\"aud\\" claim is wrong')));
  });
});

describe("a certificate-bound token (RFC 8705), Glewlwyd over mutual TLS", () => {
  let token: string;
  beforeAll(async () => {
    const res = await mtlsRequest(tlsGl.tokenEndpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: "cert-bound", scope: GLEWLWYD_SCOPE }).toString(),
    });
    expect(res.status).toBe(200);
    token = JSON.parse(res.text).access_token;
    tokensSeen.add(token);
    expect(payload(token).cnf["x5t#S256"]).toBeString();
  });

  it("passes over mutual TLS with the certificate it is bound to", async () => {
    const r = await mtlsRequest(`${gw.proxyTlsUrl}/mtls`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text).headers.authorization).toBe(`Bearer ${token}`);
  });

  it("is refused without a client certificate", async () => {
    expect((await call("/mtls", { authorization: `Bearer ${token}` })).status).toBe(401);
  });
});

describe("the gateway's own token", () => {
  it("private_key_jwt with aud = the token endpoint: the upstream gets a token issued to the gateway", async () => {
    const r = await call("/private-key-jwt");
    expect(r.status).toBe(200);
    expect(payload(r.authorization!.slice(7)).client_id).toBe("gateway-pkjwt");
  });

  it("client_secret_jwt with aud = the token endpoint: the upstream gets a token issued to the gateway", async () => {
    const r = await call("/client-secret-jwt");
    expect(r.status).toBe(200);
    expect(payload(r.authorization!.slice(7)).client_id).toBe("gateway-hsjwt");
  });

  it("tls_client_auth with the JohnDoe certificate: the token is bound to it", async () => {
    const r = await call("/tls-client-auth");
    expect(r.status).toBe(200);
    const claims = payload(r.authorization!.slice(7));
    expect(claims.client_id).toBe("gateway-tls");
    expect(claims.cnf["x5t#S256"]).toBeString();
  });
});
