import { beforeAll, describe, expect, it } from "bun:test";
import { createLocalJWKSet, errors, exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type JWTPayload } from "jose";
import { IdpError, AccessTokenError } from "../../../../src/errors.ts";
import { ASYMMETRIC_ALGORITHMS } from "../../../../src/lib/jwa.ts";
import { looksLikeJwt, verifyAccessToken, type AccessTokenPolicy, type KeySource } from "../../../../src/oidc/resource/verify-access-token.ts";

const ISSUER = "https://idp.example/realms/master";
const policy: AccessTokenPolicy = { algorithms: [...ASYMMETRIC_ALGORITHMS], leeway: 0 };
let source: KeySource;
let privateKey: CryptoKey;
let otherKey: CryptoKey;

beforeAll(async () => {
  const pair = await generateKeyPair("RS256");
  privateKey = pair.privateKey;
  otherKey = (await generateKeyPair("RS256")).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  source = { issuer: ISSUER, getKey: createLocalJWKSet({ keys: [jwk] }) };
});

const now = () => Math.floor(Date.now() / 1000);
function sign(claims: JWTPayload = {}, header: Record<string, unknown> = {}, key: CryptoKey = privateKey) {
  return new SignJWT({ iss: ISSUER, exp: now() + 300, iat: now(), ...claims })
    .setProtectedHeader({ alg: "RS256", kid: "k1", typ: "at+jwt", ...header })
    .sign(key);
}
async function reason(token: string, p: AccessTokenPolicy = policy, secret?: string) {
  const error = await verifyAccessToken(token, source, p, secret).catch((e) => e);
  expect(error).toBeInstanceOf(AccessTokenError);
  return (error as AccessTokenError).reason;
}

describe("access token verification", () => {
  it("accepts a token signed by the issuer's key and returns its claims and expiry", async () => {
    const exp = now() + 120;
    const verified = await verifyAccessToken(await sign({ sub: "service", exp }), source, policy);
    expect(verified.claims.sub).toBe("service");
    expect(verified.expiresAt).toBe(exp * 1000);
    expect(verified.header.kid).toBe("k1");
  });

  it("refuses an unsigned token (alg none) whatever the policy says", async () => {
    const unsecured = new UnsecuredJWT({ iss: ISSUER, exp: now() + 60 }).encode();
    expect(await reason(unsecured, { ...policy, algorithms: [...policy.algorithms, "none"] })).toBe("algorithm");
  });

  it("refuses HMAC tokens unless they are enabled and a secret is given", async () => {
    const secret = "cf4c655a-0622-4ce6-a0de-d3353ef0b714";
    const hs = await new SignJWT({ iss: ISSUER, exp: now() + 60 }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(secret));
    expect(await reason(hs)).toBe("algorithm");
    const withHs = { ...policy, algorithms: [...policy.algorithms, "HS256"] };
    expect(await reason(hs, withHs)).toBe("algorithm"); // no secret
    expect(await reason(hs, withHs, "another secret")).toBe("signature");
    expect((await verifyAccessToken(hs, source, withHs, secret)).claims.iss).toBe(ISSUER);
  });

  it("refuses an algorithm outside the allowed list", async () => {
    expect(await reason(await sign(), { ...policy, algorithms: ["ES256"] })).toBe("algorithm");
  });

  it("refuses a signature by another key", async () => {
    expect(await reason(await sign({}, {}, otherKey))).toBe("signature");
  });

  it("refuses a kid the issuer does not have", async () => {
    expect(await reason(await sign({}, { kid: "unknown" }))).toBe("unknown_key");
  });

  it("compares iss exactly", async () => {
    expect(await reason(await sign({ iss: `${ISSUER}/` }))).toBe("issuer");
    expect(await reason(await sign({ iss: ISSUER.toUpperCase() }))).toBe("issuer");
  });

  it("checks exp, nbf and iat with the configured leeway", async () => {
    const expired = await sign({ exp: now() - 5 });
    expect(await reason(expired)).toBe("expired");
    expect((await verifyAccessToken(expired, source, { ...policy, leeway: 30 })).claims.iss).toBe(ISSUER);
    expect(await reason(await sign({ nbf: now() + 60 }))).toBe("not_yet_valid");
    expect(await reason(await sign({ iat: now() + 60 }))).toBe("issued_in_future");
  });

  it("tolerates a few seconds of clock skew on iat even with leeway 0: iat 2 s ahead is accepted, 60 s ahead refused", async () => {
    expect((await verifyAccessToken(await sign({ iat: now() + 2 }), source, policy)).claims.iss).toBe(ISSUER);
    expect(await reason(await sign({ iat: now() + 60 }))).toBe("issued_in_future");
  });

  it("checks aud and typ when the policy asks", async () => {
    expect(await reason(await sign({ aud: "other" }), { ...policy, audience: ["http://localhost:8000"] })).toBe("audience");
    expect(
      (await verifyAccessToken(await sign({ aud: ["x", "http://localhost:8000"] }), source, { ...policy, audience: ["http://localhost:8000"] }))
        .claims.aud,
    ).toBeDefined();
    expect(await reason(await sign({}, { typ: "JWT" }), { ...policy, typ: "at+jwt" })).toBe("type");
  });

  it("requires exp only when asked", async () => {
    const noExp = await new SignJWT({ iss: ISSUER }).setProtectedHeader({ alg: "RS256", kid: "k1" }).sign(privateKey);
    expect((await verifyAccessToken(noExp, source, policy)).expiresAt).toBeUndefined();
    expect(await reason(noExp, { ...policy, requireExpiry: true })).toBe("claims");
  });

  describe("an issuer key that cannot be used is the IdP's failure (IdpError bad_response, a 502), never the caller's invalid_token", () => {
    const idpFailure = async (keys: KeySource, token: string) => {
      const error = await verifyAccessToken(token, keys, policy).catch((e) => e);
      expect(error).toBeInstanceOf(IdpError);
      expect((error as IdpError).failure).toBe("bad_response");
      expect((error as IdpError).status).toBe(502);
    };

    it.each([
      ["JWKSInvalid", () => new errors.JWKSInvalid("JSON Web Key Set malformed")],
      ["JWKInvalid", () => new errors.JWKInvalid('"n" (Modulus) Parameter missing or invalid')],
      ["JOSENotSupported", () => new errors.JOSENotSupported('Unsupported "kty" (Key Type) Parameter value')],
    ])("a key resolver throwing %s", async (_name, error) => {
      await idpFailure({ issuer: ISSUER, getKey: () => Promise.reject(error()) }, await sign());
    });

    it("a published key whose data WebCrypto cannot import", async () => {
      const broken = { ...(await exportJWK((await generateKeyPair("RS256")).publicKey)), n: "!!", kid: "k1", alg: "RS256" };
      await idpFailure({ issuer: ISSUER, getKey: createLocalJWKSet({ keys: [broken] }) }, await sign());
    });

    it("a published RSA key shorter than 2048 bits", async () => {
      const short = (await crypto.subtle.generateKey(
        { name: "RSASSA-PKCS1-v1_5", modulusLength: 1024, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
        true,
        ["sign", "verify"],
      )) as CryptoKeyPair;
      const b64 = (data: string | ArrayBuffer) => Buffer.from(typeof data === "string" ? data : new Uint8Array(data)).toString("base64url");
      const input = `${b64(JSON.stringify({ alg: "RS256", kid: "k1", typ: "at+jwt" }))}.${b64(JSON.stringify({ iss: ISSUER, exp: now() + 60, iat: now() }))}`;
      const token = `${input}.${b64(await crypto.subtle.sign("RSASSA-PKCS1-v1_5", short.privateKey, new TextEncoder().encode(input)))}`;
      const jwk = { ...(await crypto.subtle.exportKey("jwk", short.publicKey)), kid: "k1", alg: "RS256" };
      await idpFailure({ issuer: ISSUER, getKey: createLocalJWKSet({ keys: [jwk] }) }, token);
    });

    it("while a kid the issuer does not have stays the caller's unknown_key", async () => {
      expect(await reason(await sign({}, { kid: "unknown" }))).toBe("unknown_key");
    });
  });

  it("refuses what is not a compact JWS before any parsing", async () => {
    expect(looksLikeJwt("opaque-token")).toBe(false);
    expect(looksLikeJwt("a.b.c")).toBe(true);
    expect(await reason("opaque")).toBe("malformed");
    expect(await reason("e30.e30.")).toBe("algorithm"); // {} header: no alg
    expect(await reason("!!.??.!!")).toBe("malformed");
    expect(await reason(`${"a".repeat(17_000)}.b.c`)).toBe("malformed");
  });
});
