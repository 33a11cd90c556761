import { beforeEach, describe, expect, it } from "bun:test";
import { errorResponse } from "../../../../src/gateway/error-response.ts";
import { createDpopNonces } from "../../../../src/oidc/resource/dpop-nonce.ts";
import {
  checkDpop,
  createDpopOrigins,
  dpopConfig,
  verifyDpopProof,
  type DpopConfig,
  type DpopConfigInput,
  type DpopProofInput,
} from "../../../../src/oidc/resource/dpop.ts";
import { createMemoryReplayStore } from "../../../../src/oidc/resource/replay-store.ts";
import { bunRuntime } from "../../../../src/runtime/bun.ts";
import {
  b64u,
  handKey,
  handMadeProof,
  handThumbprint,
  hmacProof,
  makeProof,
  proofClaims,
  proofKey,
  rejection,
  unsignedProof,
  type ProofKey,
} from "../../../support/dpop-proof.ts";

const TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJjbGllbnQtZHBvcC1hdXRoIn0.c2lnbmF0dXJl";
const URL_ = "http://localhost:8000/resource";
const origins = createDpopOrigins(["https://api.example.com"]);
const listener = { tls: false, localPort: 8000 };

/** Every case runs twice: signatures checked by WebCrypto (jose), and by the runtime's synchronous check. */
let jwsVerifier: DpopConfigInput["jwsVerifier"];
const config = (input: DpopConfigInput = {}) => dpopConfig({ ...input, ...(jwsVerifier ? { jwsVerifier } : {}) });

function request(proof: string | string[] | undefined, over: Partial<DpopProofInput> & { key?: ProofKey } = {}): DpopProofInput {
  const headers = new Headers();
  for (const p of proof === undefined ? [] : Array.isArray(proof) ? proof : [proof]) headers.append("dpop", p);
  return {
    method: "GET",
    url: URL_,
    headers,
    origins: origins(listener),
    accessToken: TOKEN,
    claims: { sub: "client-dpop-auth", cnf: { jkt: over.key?.jkt ?? "unset" } },
    config: config({ proofLifetime: 300, leeway: 5 }),
    replay: createMemoryReplayStore(),
    ...over,
  };
}

for (const [checker, verifier] of [
  ["WebCrypto (jose)", undefined],
  ["the runtime's synchronous check", bunRuntime.jwsVerifier],
] as const)
  describe(`signatures checked by ${checker}:`, () => {
    beforeEach(() => {
      jwsVerifier = verifier;
    });

    describe("a valid DPoP proof (RFC 9449 §4.3)", () => {
      it("is accepted and yields the RFC 7638 thumbprint of its key", async () => {
        const key = await proofKey("ES256");
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN });
        const result = await verifyDpopProof(request(proof, { key }));
        expect(result.jkt).toBe(key.jkt);
      });

      it("is accepted when built by hand with WebCrypto, not jose, and the binding is computed by hand too", async () => {
        const key = await handKey();
        const jkt = await handThumbprint(key.publicJwk);
        const proof = await handMadeProof(key, await proofClaims({ url: URL_, accessToken: TOKEN }));
        const result = await verifyDpopProof(request(proof, { claims: { cnf: { jkt } } }));
        expect(result.jkt).toBe(jkt);
      });

      it.each(["ES384", "PS256", "RS256", "EdDSA"])("is accepted with %s", async (alg) => {
        const key = await proofKey(alg);
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN });
        expect((await verifyDpopProof(request(proof, { key }))).jkt).toBe(key.jkt);
      });

      it("is accepted with iat 2 s in the future even with leeway 0: clients' clocks run a little ahead (RFC 9449 §11.1)", async () => {
        const key = await proofKey();
        const now = Math.floor(Date.now() / 1000);
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN, now: now + 2 });
        expect((await verifyDpopProof(request(proof, { key, now, config: config({ proofLifetime: 300, leeway: 0 }) }))).jkt).toBe(key.jkt);
      });

      it("is accepted with iat 8 s in the future by default (dpop_proof_clock_skew = 10), refused at 12 s, and at 8 s with a skew of 5", async () => {
        const key = await proofKey();
        const now = Math.floor(Date.now() / 1000);
        const ahead = async (seconds: number, clockSkew?: number) =>
          verifyDpopProof(
            request(await makeProof({ key, url: URL_, accessToken: TOKEN, now: now + seconds }), {
              key,
              now,
              config: config({ proofLifetime: 300, leeway: 0, ...(clockSkew !== undefined ? { clockSkew } : {}) }),
            }),
          );
        expect((await ahead(8)).jkt).toBe(key.jkt);
        await expect(ahead(12)).rejects.toThrow();
        await expect(ahead(8, 5)).rejects.toThrow();
      });

      it("ignores the query and fragment of htu and of the request", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, url: `${URL_}?a=1#frag`, accessToken: TOKEN });
        await verifyDpopProof(request(proof, { key, url: `${URL_}?b=2` }));
      });

      it("accepts a configured public origin as htu even though the request arrived on loopback", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, url: "https://api.example.com/resource", accessToken: TOKEN });
        await verifyDpopProof(request(proof, { key }));
      });
    });

    describe("a DPoP proof is refused with invalid_dpop_proof when", () => {
      it("it is replayed (same jti for the same key)", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN });
        const replay = createMemoryReplayStore();
        await verifyDpopProof(request(proof, { key, replay }));
        const error = await rejection(verifyDpopProof(request(proof, { key, replay })));
        expect(error.error).toBe("invalid_dpop_proof");
        expect(error.description).toContain("jti");
      });

      it("htm is not the request method", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, method: "POST", url: URL_, accessToken: TOKEN });
        expect((await rejection(verifyDpopProof(request(proof, { key })))).description).toContain("htm");
      });

      it("htm differs only in case (methods are case-sensitive)", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, method: "get", url: URL_, accessToken: TOKEN });
        expect((await rejection(verifyDpopProof(request(proof, { key })))).error).toBe("invalid_dpop_proof");
      });

      it("htu names another path", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, url: "http://localhost:8000/other", accessToken: TOKEN });
        expect((await rejection(verifyDpopProof(request(proof, { key })))).description).toContain("htu");
      });

      it("htu names another host, even when the request carries that host in Host and X-Forwarded-Host", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, url: "http://other.example:8000/resource", accessToken: TOKEN });
        const input = request(proof, { key, url: "http://other.example:8000/resource" });
        input.headers.set("host", "other.example:8000");
        input.headers.set("x-forwarded-host", "other.example:8000");
        const error = await rejection(verifyDpopProof(input));
        expect(error.error).toBe("invalid_dpop_proof");
        expect(error.description).toContain("htu");
      });

      it("htu has https but the request came in on the plain listener", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, url: "https://localhost:8000/resource", accessToken: TOKEN });
        expect((await rejection(verifyDpopProof(request(proof, { key })))).description).toContain("htu");
      });

      it("htu names the listener's port on another listener", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, url: "http://localhost:9999/resource", accessToken: TOKEN });
        expect((await rejection(verifyDpopProof(request(proof, { key })))).description).toContain("htu");
      });

      it("iat is older than dpop_proof_lifetime plus leeway", async () => {
        const key = await proofKey();
        const now = Math.floor(Date.now() / 1000);
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN, now: now - 306 });
        expect((await rejection(verifyDpopProof(request(proof, { key, now })))).description).toContain("too old");
      });

      it("iat is 60 s in the future, with leeway 0", async () => {
        const key = await proofKey();
        const now = Math.floor(Date.now() / 1000);
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN, now: now + 60 });
        expect(
          (await rejection(verifyDpopProof(request(proof, { key, now, config: config({ proofLifetime: 300, leeway: 0 }) })))).description,
        ).toContain("future");
      });

      it("iat is in the future beyond the leeway and dpop_proof_clock_skew", async () => {
        const key = await proofKey();
        const now = Math.floor(Date.now() / 1000);
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN, now: now + 11 });
        expect((await rejection(verifyDpopProof(request(proof, { key, now })))).description).toContain("future");
      });

      it("iat is missing", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN, claims: { iat: undefined } });
        expect((await rejection(verifyDpopProof(request(proof, { key })))).error).toBe("invalid_dpop_proof");
      });

      it("ath is the hash of another token", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, url: URL_, accessToken: "another-token" });
        expect((await rejection(verifyDpopProof(request(proof, { key })))).description).toContain("ath");
      });

      it("ath is missing", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, url: URL_ });
        expect((await rejection(verifyDpopProof(request(proof, { key })))).description).toContain("ath");
      });

      it("jti is missing", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN, claims: { jti: undefined } });
        expect((await rejection(verifyDpopProof(request(proof, { key })))).description).toContain("jti");
      });

      it("the embedded jwk holds a private key", async () => {
        const key = await proofKey();
        const { exportJWK } = await import("jose");
        const privateJwk = await exportJWK(key.privateKey);
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN, header: { jwk: privateJwk } });
        const error = await rejection(verifyDpopProof(request(proof, { key })));
        expect(error.error).toBe("invalid_dpop_proof");
        expect(error.description).toContain("private");
      });

      it("alg is none", async () => {
        const key = await proofKey();
        const claims = await proofClaims({ url: URL_, accessToken: TOKEN, claims: { jti: "j1" } });
        // Without a signature the proof is not even a compact JWS; with a fake one the alg is refused.
        expect((await rejection(verifyDpopProof(request(unsignedProof(key.publicJwk, claims), { key })))).error).toBe("invalid_dpop_proof");
        const faked = unsignedProof(key.publicJwk, claims) + b64u("x");
        const error = await rejection(verifyDpopProof(request(faked, { key })));
        expect(error.error).toBe("invalid_dpop_proof");
        expect(error.description).toContain("alg");
      });

      it("alg is HS256 with a symmetric key", async () => {
        const proof = await hmacProof(await proofClaims({ url: URL_, accessToken: TOKEN, claims: { jti: "j2" } }));
        const error = await rejection(verifyDpopProof(request(proof)));
        expect(error.error).toBe("invalid_dpop_proof");
        expect(error.description).toContain("alg");
      });

      it("alg is asymmetric but not among the configured algorithms", async () => {
        const key = await proofKey("RS256");
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN });
        const error = await rejection(verifyDpopProof(request(proof, { key, config: config({ algorithms: ["ES256"] }) })));
        expect(error.description).toContain("alg");
      });

      it("typ is not dpop+jwt", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN, header: { typ: "JWT" } });
        expect((await rejection(verifyDpopProof(request(proof, { key })))).description).toContain("typ");
      });

      it("the request has two DPoP headers", async () => {
        const key = await proofKey();
        const a = await makeProof({ key, url: URL_, accessToken: TOKEN });
        const b = await makeProof({ key, url: URL_, accessToken: TOKEN });
        const error = await rejection(verifyDpopProof(request([a, b], { key })));
        expect(error.error).toBe("invalid_dpop_proof");
        expect(error.description).toContain("exactly one");
      });

      it("the DPoP header is missing", async () => {
        const key = await proofKey();
        expect((await rejection(verifyDpopProof(request(undefined, { key })))).description).toContain("missing");
      });

      it("the DPoP header is not one compact JWT", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN });
        for (const bad of ["not-a-jwt", `${proof}.extra`, `${proof} ${proof}`, JSON.stringify({ payload: "x" })]) {
          expect((await rejection(verifyDpopProof(request(bad, { key })))).error).toBe("invalid_dpop_proof");
        }
      });

      it("the signature was not made by the embedded key", async () => {
        const key = await proofKey();
        const other = await proofKey();
        // Signed by `other`, but claims to be `key`.
        const proof = await makeProof({ key: { ...other, publicJwk: key.publicJwk }, url: URL_, accessToken: TOKEN });
        const error = await rejection(verifyDpopProof(request(proof, { key })));
        expect(error.error).toBe("invalid_dpop_proof");
        expect(error.description).toContain("signature");
      });

      it("the payload was altered after signing", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, url: "http://localhost:8000/other", accessToken: TOKEN });
        const [h, , s] = proof.split(".");
        const forged = `${h}.${b64u(JSON.stringify(await proofClaims({ url: URL_, accessToken: TOKEN, claims: { jti: "j3" } })))}.${s}`;
        expect((await rejection(verifyDpopProof(request(forged, { key })))).description).toContain("signature");
      });
    });

    describe("the key binding (RFC 9449 §7.1) is refused with invalid_token when", () => {
      it("the proof is signed by another key than the token is bound to", async () => {
        const bound = await proofKey();
        const other = await proofKey();
        const proof = await makeProof({ key: other, url: URL_, accessToken: TOKEN });
        const error = await rejection(verifyDpopProof(request(proof, { key: bound })));
        expect(error.error).toBe("invalid_token");
        expect(error.status).toBe(401);
      });

      it("the token is not DPoP-bound at all", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN });
        const error = await rejection(verifyDpopProof(request(proof, { claims: { sub: "x" } })));
        expect(error.error).toBe("invalid_token");
      });
    });

    describe("server nonces (RFC 9449 §9)", () => {
      const SECRET = "0123456789abcdef0123456789abcdef";

      async function nonceConfig(): Promise<DpopConfig> {
        return config({ leeway: 5, nonces: await createDpopNonces({ secret: SECRET }) });
      }

      it("a proof without a nonce gets use_dpop_nonce, a fresh DPoP-Nonce and Cache-Control: no-store", async () => {
        const config = await nonceConfig();
        const key = await proofKey();
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN });
        const error = await rejection(verifyDpopProof(request(proof, { key, config })));
        expect(error.error).toBe("use_dpop_nonce");
        expect(error.status).toBe(401);
        expect(error.headers["dpop-nonce"]).toBe(await config.nonces!.current());
        const response = errorResponse(error);
        expect(response.status).toBe(401);
        expect(response.headers.get("dpop-nonce")).toBe(await config.nonces!.current());
        expect(response.headers.get("cache-control")).toBe("no-store");
        expect(response.headers.get("www-authenticate")).toBe(
          `DPoP algs="${config.algorithms.join(" ")}", error="use_dpop_nonce", error_description="resource server requires nonce in dpop proof"`,
        );
      });

      it("a proof with the nonce handed out is accepted", async () => {
        const config = await nonceConfig();
        const key = await proofKey();
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN, claims: { nonce: await config.nonces!.current() } });
        await verifyDpopProof(request(proof, { key, config }));
      });

      it("a stale nonce (three slots old) gets use_dpop_nonce with a fresh one", async () => {
        const config = await nonceConfig();
        const key = await proofKey();
        const stale = await config.nonces!.current(Date.now() - 180_000);
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN, claims: { nonce: stale } });
        const error = await rejection(verifyDpopProof(request(proof, { key, config })));
        expect(error.error).toBe("use_dpop_nonce");
        expect(error.headers["dpop-nonce"]).not.toBe(stale);
      });

      it("a nonce from a gateway with another secret gets use_dpop_nonce", async () => {
        const config = await nonceConfig();
        const foreign = await createDpopNonces({ secret: "another secret of at least 32 bytes!" });
        const key = await proofKey();
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN, claims: { nonce: await foreign.current() } });
        expect((await rejection(verifyDpopProof(request(proof, { key, config })))).error).toBe("use_dpop_nonce");
      });

      it("a nonce is not asked for while dpop_use_nonce is off", async () => {
        const key = await proofKey();
        await verifyDpopProof(request(await makeProof({ key, url: URL_, accessToken: TOKEN }), { key }));
      });
    });

    describe("error responses for DPoP failures", () => {
      it("are 401 with a DPoP challenge carrying algs and the error code", async () => {
        const key = await proofKey();
        const proof = await makeProof({ key, method: "POST", url: URL_, accessToken: TOKEN });
        const response = errorResponse(await rejection(verifyDpopProof(request(proof, { key, config: config({ algorithms: ["ES256", "PS256"] }) }))));
        expect(response.status).toBe(401);
        expect(response.headers.get("www-authenticate")).toStartWith('DPoP algs="ES256 PS256", error="invalid_dpop_proof"');
        expect(response.headers.get("cache-control")).toBeNull();
      });
    });

    describe("dpop configuration", () => {
      it.each(["none", "HS256", "HS512"])("refuses the algorithm %s", (alg) => {
        expect(() => config({ algorithms: [alg] })).toThrow("asymmetric");
      });

      it("defaults to a 300 s proof lifetime", () => {
        expect(config().proofLifetime).toBe(300);
      });
    });

    describe("proof_of_possession_dpop modes (Kong's meaning)", () => {
      async function setup(bound: boolean) {
        const key = await proofKey();
        const proof = await makeProof({ key, url: URL_, accessToken: TOKEN });
        const base = request(proof, { key, claims: bound ? { cnf: { jkt: key.jkt } } : { sub: "x" } });
        return { key, base };
      }

      it("off checks nothing, even a bound token under the Bearer scheme", async () => {
        const { base } = await setup(true);
        expect(await checkDpop({ ...base, mode: "off", scheme: "Bearer" })).toBeUndefined();
      });

      it("optional lets an unbound token through under the Bearer scheme", async () => {
        const { base } = await setup(false);
        expect(await checkDpop({ ...base, mode: "optional", scheme: "Bearer" })).toBeUndefined();
      });

      it("optional refuses a DPoP-bound token under the Bearer scheme with invalid_token", async () => {
        const { base } = await setup(true);
        const error = await rejection(checkDpop({ ...base, mode: "optional", scheme: "Bearer" }));
        expect(error.error).toBe("invalid_token");
        expect(error.status).toBe(401);
      });

      it("optional verifies the proof of a bound token under the DPoP scheme", async () => {
        const { key, base } = await setup(true);
        expect((await checkDpop({ ...base, mode: "optional", scheme: "DPoP" }))?.jkt).toBe(key.jkt);
      });

      it("strict refuses an unbound token under the Bearer scheme", async () => {
        const { base } = await setup(false);
        expect((await rejection(checkDpop({ ...base, mode: "strict", scheme: "Bearer" }))).error).toBe("invalid_token");
      });

      it("strict refuses an unbound token under the DPoP scheme", async () => {
        const { base } = await setup(false);
        expect((await rejection(checkDpop({ ...base, mode: "strict", scheme: "DPoP" }))).error).toBe("invalid_token");
      });

      it("strict accepts a bound token with a valid proof", async () => {
        const { key, base } = await setup(true);
        expect((await checkDpop({ ...base, mode: "strict", scheme: "DPoP" }))?.jkt).toBe(key.jkt);
      });
    });
  });
