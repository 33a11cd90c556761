/**
 * `introspection_accept = "application/token-introspection+jwt"` (RFC 9701) against the real IdP
 * (oidc-provider with its `jwtIntrospection` feature) and the real gateway: the signed answer is
 * verified with the issuer's keys before it lets a token through; an answer that does not verify
 * (a relay in the test flips a bit of the IdP's signature) or an unsigned JSON answer is the
 * IdP's failure, a logged 502, never a 401. `upstream_introspection_jwt_header` hands the signed
 * answer to the upstream, which can verify it itself.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { errorOf } from "../support/config.ts";
import { simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { oidcSuite } from "../support/oidc-suite.ts";
import { waitUntil } from "../support/wait.ts";

/** The gateway's client: its introspection answers are signed (RS256) when asked for a JWT. */
const SIGNED = { id: "gateway-jwt", secret: "gateway-jwt-secret-0123456789" };
const tokensSeen = new Set<string>();
const { idp, upstream, gateways } = oidcSuite({
  idp: {
    options: {
      jwtIntrospection: true,
      extraClients: [{ client_id: SIGNED.id, client_secret: SIGNED.secret, introspection_signed_response_alg: "RS256" }],
    },
  },
  neverLogged: () => [SIGNED.secret, ...tokensSeen],
});
/** An IdP without RFC 9701 (oidc-provider without `jwtIntrospection`): it answers plain JSON whatever is asked. */
let plainIdp: IdpProcess;
let relay: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  plainIdp = await startIdpProcess({ options: { extraClients: [{ client_id: SIGNED.id, client_secret: SIGNED.secret }] } });
  // Relays introspection requests to the IdP and flips one bit of the answer's signature.
  relay = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const answer = await fetch(`${idp.issuer}/protocol/openid-connect/token/introspect`, {
        method: "POST",
        headers: req.headers,
        body: await req.text(),
      });
      const jwt = await answer.text();
      // A character inside the signature (the last one may carry only padding bits).
      const at = jwt.length - 10;
      const tampered = jwt.slice(0, at) + (jwt[at] === "A" ? "Q" : "A") + jwt.slice(at + 1);
      return new Response(tampered, { status: answer.status, headers: { "content-type": answer.headers.get("content-type")! } });
    },
  });
});

afterAll(async () => {
  await plainIdp?.stop();
  relay?.stop(true);
});

async function gateway(extra = "", issuer = idp.issuer): Promise<GatewayProcess> {
  const gw = await startGateway({
    config: simpleConfig(
      `${upstream.url}/anything`,
      `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "${issuer}"\nauth_methods = ["introspection"]\nclient_id = "${SIGNED.id}"\nclient_secret = "${SIGNED.secret}"\nintrospection_accept = "application/token-introspection+jwt"\n${extra}`,
    ),
  });
  gateways.push(gw);
  return gw;
}

async function opaqueToken(from = idp): Promise<string> {
  const { access_token } = await from.token("opaque", "opaque-secret");
  tokensSeen.add(access_token);
  return access_token;
}

const call = (gw: GatewayProcess, token: string) => fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: `Bearer ${token}` } });

describe("introspection_accept = application/token-introspection+jwt", () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await gateway("cache_introspection = false");
  });

  it("lets an active token through on the IdP's signed answer", async () => {
    const before = (await idp.stats()).introspection;
    const res = await call(gw, await opaqueToken());
    expect(res.status).toBe(200);
    await res.text();
    expect((await idp.stats()).introspection).toBe(before + 1);
  });

  it("refuses a token the signed answer says is not active with 401 invalid_token", async () => {
    const before = (await idp.stats()).introspection;
    const res = await call(gw, "not-a-token-the-idp-issued");
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
    expect((await idp.stats()).introspection).toBe(before + 1); // the IdP's answer decided, not the gateway alone
  });

  it("answers 502, logged, never 401, when the answer's signature does not verify", async () => {
    const tampered = await gateway(`cache_introspection = false\nintrospection_endpoint = "http://127.0.0.1:${relay.port}/introspect"`);
    const res = await call(tampered, await opaqueToken());
    expect(res.status).toBe(502);
    expect(res.headers.get("www-authenticate")).toBeNull();
    await res.text();
    await waitUntil("the gateway to log the bad signature", () => tampered.output.some((l) => l.includes("signature does not verify")));
  });

  it("answers 502, never 401, when the IdP answers unsigned JSON instead (no downgrade)", async () => {
    const plain = await gateway("cache_introspection = false", plainIdp.issuer);
    const res = await call(plain, await opaqueToken(plainIdp));
    expect(res.status).toBe(502);
    await res.text();
    await waitUntil("the gateway to log the unsigned answer", () => plain.output.some((l) => l.includes("not the signed JWT")));
  });

  it("refuses at start Kong's obsolete application/jwt, saying what to use", async () => {
    const text = simpleConfig(
      "http://127.0.0.1:1/",
      `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "https://idp.example"\nauth_methods = ["introspection"]\nclient_id = "c"\nclient_secret = "s"\nintrospection_accept = "application/jwt"`,
    );
    expect(errorOf(text)).toMatch(/introspection_accept.*application\/token-introspection\+jwt/s);
  });
});

describe("upstream_introspection_jwt_header", () => {
  it("gives the upstream the IdP's signed answer, which verifies with the IdP's keys, in place of a header the caller forged", async () => {
    const gw = await gateway(`upstream_introspection_jwt_header = "X-Introspection-Jwt"`);
    const token = await opaqueToken();
    const res = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: `Bearer ${token}`, "x-introspection-jwt": "forged" } });
    expect(res.status).toBe(200);
    const jwt = ((await res.json()) as { headers: Record<string, string> }).headers["x-introspection-jwt"]!;
    expect(decodeProtectedHeader(jwt).typ).toBe("token-introspection+jwt");
    const { payload } = await jwtVerify(jwt, createRemoteJWKSet(new URL(idp.jwksUri)), { issuer: idp.issuer, audience: SIGNED.id });
    const introspected = payload.token_introspection as Record<string, unknown>;
    expect(introspected.active).toBe(true);
    expect(introspected.client_id).toBe("opaque");
  });

  it("serves the header from the cache too: the repeat makes no IdP call and carries the same JWT", async () => {
    const gw = await gateway(`upstream_introspection_jwt_header = "X-Introspection-Jwt"`);
    const token = await opaqueToken();
    const first = (await (await call(gw, token)).json()) as { headers: Record<string, string> };
    const before = (await idp.stats()).introspection;
    const second = (await (await call(gw, token)).json()) as { headers: Record<string, string> };
    expect((await idp.stats()).introspection).toBe(before);
    expect(second.headers["x-introspection-jwt"]).toBe(first.headers["x-introspection-jwt"]!);
  });

  it("is refused at start without introspection_accept asking for a JWT (there would be nothing to send)", async () => {
    const text = simpleConfig(
      "http://127.0.0.1:1/",
      `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "https://idp.example"\nauth_methods = ["introspection"]\nclient_id = "c"\nclient_secret = "s"\nupstream_introspection_jwt_header = "X-Jwt"`,
    );
    expect(errorOf(text)).toMatch(/upstream_introspection_jwt_header.*application\/token-introspection\+jwt/s);
  });
});
