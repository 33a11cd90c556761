/**
 * A signature check that throws is our runtime failing, not the caller's bad signature: node:crypto
 * and WebCrypto answer false for any malformed signature on Bun and Deno. So a throw becomes a
 * `CryptoFailureError` (a logged 500), never `invalid_dpop_proof` / `invalid_token` (a 401).
 */
import { afterEach, describe, expect, it, spyOn } from "bun:test";
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from "jose";
import { CryptoFailureError } from "../../../../src/errors.ts";
import { errorResponse } from "../../../../src/gateway/error-response.ts";
import { createDpopOrigins, dpopConfig, verifyDpopProof, type DpopConfigInput } from "../../../../src/oidc/resource/dpop.ts";
import { createMemoryReplayStore } from "../../../../src/oidc/resource/replay-store.ts";
import { verifyAccessToken } from "../../../../src/oidc/resource/verify-access-token.ts";
import { verifyIntrospectionJwt } from "../../../../src/oidc/client/introspection-jwt.ts";
import { nodeCrypto } from "../../../../src/runtime/builtins.ts";
import { jwsVerifier } from "../../../../src/runtime/jws-verify.ts";
import { makeProof, proofKey } from "../../../support/dpop-proof.ts";

const TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjbGllbnQtZHBvcC1hdXRoIn0.c2lnbmF0dXJl";
const URL_ = "http://localhost:8000/resource";
const broken = () => {
  throw new Error("the runtime's crypto failed");
};

async function proofFailure(verifier?: DpopConfigInput["jwsVerifier"]): Promise<unknown> {
  const key = await proofKey("ES256");
  const proof = await makeProof({ key, url: URL_, accessToken: TOKEN });
  return verifyDpopProof({
    method: "GET",
    url: URL_,
    headers: new Headers({ dpop: proof }),
    origins: createDpopOrigins()({ tls: false, localPort: 8000 }),
    accessToken: TOKEN,
    claims: { cnf: { jkt: key.jkt } },
    config: dpopConfig(verifier ? { jwsVerifier: verifier } : {}),
    replay: createMemoryReplayStore(),
  }).catch((e: unknown) => e);
}

function expectOurFailure(error: unknown): void {
  expect(error).toBeInstanceOf(CryptoFailureError);
  expect((error as CryptoFailureError).code).toBe("internal.crypto");
  const response = errorResponse(error);
  expect(response.status).toBe(500);
  expect(response.headers.get("www-authenticate")).toBeNull();
}

const restore: (() => void)[] = [];
afterEach(() => {
  for (const undo of restore.splice(0)) undo();
});

describe("a signature check that throws inside the runtime", () => {
  it("is our 500 for a DPoP proof checked by an injected synchronous verifier, not the caller's invalid_dpop_proof", async () => {
    expectOurFailure(await proofFailure(() => broken));
  });

  it("is our 500 for a DPoP proof checked by the runtime's node:crypto verifier", async () => {
    const spy = spyOn(nodeCrypto(), "verify").mockImplementation(broken);
    restore.push(() => spy.mockRestore());
    const key = await proofKey("ES256");
    const check = jwsVerifier(key.publicJwk as Record<string, unknown>, "ES256")!;
    expect(() => check(new Uint8Array(1), new Uint8Array(64))).toThrow("the runtime's crypto failed");
    expectOurFailure(await proofFailure(jwsVerifier));
  });

  it("is our 500 for a DPoP proof checked by WebCrypto (jose)", async () => {
    const spy = spyOn(crypto.subtle, "verify").mockImplementation(broken);
    restore.push(() => spy.mockRestore());
    expectOurFailure(await proofFailure());
  });

  it("is our 500 for a bearer JWT checked by WebCrypto (jose), not the caller's invalid_token", async () => {
    const issuer = "https://idp.example";
    const pair = await generateKeyPair("RS256");
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256" };
    const token = await new SignJWT({ iss: issuer, exp: Math.floor(Date.now() / 1000) + 60 })
      .setProtectedHeader({ alg: "RS256", kid: "k1" })
      .sign(pair.privateKey);
    const spy = spyOn(crypto.subtle, "verify").mockImplementation(broken);
    restore.push(() => spy.mockRestore());
    const error = await verifyAccessToken(token, { issuer, getKey: createLocalJWKSet({ keys: [jwk] }) }, { algorithms: ["RS256"], leeway: 0 }).catch(
      (e: unknown) => e,
    );
    expectOurFailure(error);
  });

  it("is our 500 for a JWT introspection answer checked by WebCrypto (jose), not the IdP's 502", async () => {
    const issuer = "https://idp.example";
    const pair = await generateKeyPair("ES256");
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256" };
    const answer = await new SignJWT({ iss: issuer, aud: "gateway", iat: Math.floor(Date.now() / 1000), token_introspection: { active: true } })
      .setProtectedHeader({ alg: "ES256", kid: "k1", typ: "token-introspection+jwt" })
      .sign(pair.privateKey);
    const spy = spyOn(crypto.subtle, "verify").mockImplementation(broken);
    restore.push(() => spy.mockRestore());
    const policy = { issuer, getKey: createLocalJWKSet({ keys: [jwk] }), clientId: "gateway", leeway: 0 };
    expectOurFailure(await verifyIntrospectionJwt(answer, policy, "https://idp.example/introspect").catch((e: unknown) => e));
  });
});

describe("a malformed signature", () => {
  it("is still the caller's invalid_dpop_proof with the runtime's verifier", async () => {
    const key = await proofKey("ES256");
    const proof = await makeProof({ key, url: URL_, accessToken: TOKEN });
    const error = await verifyDpopProof({
      method: "GET",
      url: URL_,
      headers: new Headers({ dpop: `${proof.slice(0, proof.lastIndexOf("."))}.AAAA` }),
      origins: createDpopOrigins()({ tls: false, localPort: 8000 }),
      accessToken: TOKEN,
      claims: { cnf: { jkt: key.jkt } },
      config: dpopConfig({ jwsVerifier }),
      replay: createMemoryReplayStore(),
    }).catch((e: unknown) => e);
    expect(errorResponse(error).status).toBe(401);
  });
});
