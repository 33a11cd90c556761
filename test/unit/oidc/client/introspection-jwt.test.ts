/**
 * RFC 9701 §5 checks of a JWT introspection answer, with keys made here: what the gateway
 * requires before it believes the IdP, and that every refusal is the IdP's failure (502).
 */
import { describe, expect, it } from "bun:test";
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type JWTPayload } from "jose";
import { IdpError } from "../../../../src/errors.ts";
import { verifyIntrospectionJwt } from "../../../../src/oidc/client/introspection-jwt.ts";

const ISSUER = "https://idp.example/realms/master";
const { privateKey, publicKey } = await generateKeyPair("ES256");
const other = await generateKeyPair("ES256");
const getKey = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" }] });
const policy = { issuer: ISSUER, getKey, clientId: "gateway", leeway: 0 };
const ACTIVE = { active: true, sub: "john", scope: "api", client_id: "app" };

async function answer(over: { payload?: JWTPayload; typ?: string | null; key?: CryptoKey; omit?: string[]; alg?: string } = {}): Promise<string> {
  const payload: JWTPayload = { iss: ISSUER, aud: "gateway", iat: Math.floor(Date.now() / 1000), token_introspection: ACTIVE, ...over.payload };
  for (const name of over.omit ?? []) delete payload[name];
  const header = { alg: over.alg ?? "ES256", kid: "k1", ...(over.typ === null ? {} : { typ: over.typ ?? "token-introspection+jwt" }) };
  return new SignJWT(payload).setProtectedHeader(header).sign(over.key ?? privateKey);
}

const refusal = (jwt: string) => verifyIntrospectionJwt(jwt, policy, "https://idp.example/introspect").catch((e: unknown) => e);

describe("a JWT introspection answer", () => {
  it("yields its token_introspection claim when signature, typ, iss, aud and iat verify", async () => {
    expect(await verifyIntrospectionJwt(await answer(), policy, "x")).toEqual(ACTIVE);
  });

  it("accepts the media type as typ (application/token-introspection+jwt), as RFC 7515 allows", async () => {
    expect(await verifyIntrospectionJwt(await answer({ typ: "application/token-introspection+jwt" }), policy, "x")).toEqual(ACTIVE);
  });

  it.each([
    ["signed by a key that is not the issuer's", { key: other.privateKey }, "signature does not verify"],
    ["for another client (aud)", { payload: { aud: "someone-else" } }, '"aud" claim'],
    ["from another issuer (iss)", { payload: { iss: "https://evil.example" } }, '"iss" claim'],
    ["without typ", { typ: null }, '"typ" claim'],
    ["with another typ (an ID token)", { typ: "JWT" }, '"typ" claim'],
    ["without iat", { omit: ["iat"] }, '"iat" claim'],
    ["expired", { payload: { exp: Math.floor(Date.now() / 1000) - 60 } }, "expired"],
    ["without token_introspection", { omit: ["token_introspection"] }, "token_introspection"],
    ["whose token_introspection has no active", { payload: { token_introspection: { sub: "john" } } }, "token_introspection"],
  ])("is the IdP's failure (502 bad_response, never the caller's 401) when %s", async (_what, over, message) => {
    const error = await refusal(await answer(over as Parameters<typeof answer>[0]));
    expect(error).toBeInstanceOf(IdpError);
    expect((error as IdpError).failure).toBe("bad_response");
    expect((error as IdpError).status).toBe(502);
    expect((error as IdpError).message).toContain(message);
  });

  it("refuses an HMAC-signed answer (only asymmetric algorithms) and something that is not a JWT", async () => {
    const hs = await new SignJWT({ iss: ISSUER, aud: "gateway", iat: 1, token_introspection: ACTIVE })
      .setProtectedHeader({ alg: "HS256", typ: "token-introspection+jwt" })
      .sign(new TextEncoder().encode("a-secret-that-is-long-enough-for-hs256"));
    const hmac = (await refusal(hs)) as IdpError;
    expect(hmac.status).toBe(502);
    // Refused for its algorithm, before any key is looked for (not merely because no key matched).
    expect(hmac.message).toContain("signed with an algorithm that is not allowed");
    const garbage = (await refusal("not-a-jwt")) as IdpError;
    expect(garbage.status).toBe(502);
    expect(garbage.message).toContain("it is not a valid JWT");
  });

  it("never puts the answer's claims in the error", async () => {
    const error = (await refusal(await answer({ key: other.privateKey }))) as IdpError;
    expect(error.message).not.toContain("john");
  });
});
