/**
 * Proof of possession end to end, on the compiled binary and on Deno: the real IdP
 * (oidc-provider over HTTPS with mTLS, certificates from scripts/make-certs.sh) issues a
 * DPoP-bound token to `client-dpop-auth` (RFC 9449) and a certificate-bound token to
 * `cert-bound` over mTLS (RFC 8705); the test client presents them to the real gateway.
 * Every check of RFC 9449 §4.3 has its own failing case through the gateway, with the RFC's
 * status and error code. The IdP and the upstream are shared; one gateway per runtime.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import * as https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK } from "jose";
import { ensureCerts } from "../support/certs.ts";
import {
  handKey,
  handMadeProof,
  handThumbprint,
  hmacProof,
  makeProof,
  proofClaims,
  proofKey,
  sha256b64u,
  unsignedProof,
  type ProofClaims,
  type ProofKey,
} from "../support/dpop-proof.ts";
import { defaultRuntime, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { SERVICE_SECRET, startIdpProcess, type IdpProcess, type TokenRequestOptions, type TokenResponse } from "../support/idp-process.ts";
import { tlsServerConfig } from "../support/tls-gateway.ts";
import { routePerSetting } from "../support/oidc-suite.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

// One runtime per run: `make test` runs the e2e suites once on the binary and once on Deno (GATEWAY_RUNTIME=deno).
const RUNTIMES = [defaultRuntime] as const;

let certs: string;
let idp: IdpProcess;
let upstream: EchoUpstream;
/** A second JohnDoe certificate from the same CA: verified, but not the one the token is bound to. */
let sibling: { cert: string; key: string };
const pem = (name: string) => readFileSync(join(certs, name), "utf8");
/** Tokens and proofs sent, to prove none reached a gateway log. */
const secretsSent = new Set<string>();

/** Routes and their `openid-connect` settings (all `auth_methods = ["bearer"]`). */
const ROUTES: Record<string, string> = {
  dpop: 'proof_of_possession_dpop = "strict"\ndpop_public_origins = ["https://api.example.com"]',
  "dpop-optional": 'proof_of_possession_dpop = "optional"',
  "dpop-nonce": 'proof_of_possession_dpop = "strict"\ndpop_use_nonce = true',
  "dpop-off": "",
  mtls: 'proof_of_possession_mtls = "strict"',
  "mtls-optional": 'proof_of_possession_mtls = "optional"',
};

function gatewayConfig(): string {
  const settings = Object.entries(ROUTES).map(([name, extra]) => [name, `auth_methods = ["bearer"]\n${extra}`]);
  return `${tlsServerConfig({ server: `trusted_certificates = ["${join(certs, "ca.crt")}"]\nshutdown_timeout = 2000` })}
${routePerSetting(upstream.url, idp.issuer, Object.fromEntries(settings))}`;
}

/** openssl, as make-certs uses it: a client certificate "CN=JohnDoe,OU=IT" signed by the dev CA. */
function makeSiblingCertificate(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), "pop-certs-"));
  const run = (args: string[]) => {
    const r = Bun.spawnSync(["openssl", ...args], { stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr.toString()}`);
  };
  writeFileSync(
    join(dir, "ext.cnf"),
    "[v3_client]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\n",
  );
  run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", join(dir, "sibling.key")]);
  run(["req", "-new", "-key", join(dir, "sibling.key"), "-subj", "/OU=IT/CN=JohnDoe", "-out", join(dir, "sibling.csr")]);
  run([
    "x509",
    "-req",
    "-in",
    join(dir, "sibling.csr"),
    "-CA",
    join(certs, "ca.crt"),
    "-CAkey",
    join(certs, "ca.key"),
    "-extfile",
    join(dir, "ext.cnf"),
    "-extensions",
    "v3_client",
    "-days",
    "2",
    "-sha256",
    "-set_serial",
    `0x7${crypto.randomUUID().replace(/-/g, "").slice(0, 15)}`,
    "-out",
    join(dir, "sibling.crt"),
  ]);
  return { cert: readFileSync(join(dir, "sibling.crt"), "utf8"), key: readFileSync(join(dir, "sibling.key"), "utf8") };
}

beforeAll(async () => {
  certs = ensureCerts();
  upstream = startEchoUpstream();
  idp = await startIdpProcess({ devTls: true });
  sibling = makeSiblingCertificate();
}, 30_000);

afterAll(async () => {
  await idp?.stop();
  await upstream?.stop();
});

// ---------------------------------------------------------------------------------------------
// The test client: tokens from the IdP, requests to the gateway.

async function tokenRequest(clientId: string, secret: string, options: TokenRequestOptions = {}): Promise<TokenResponse> {
  const body = await idp.token(clientId, secret, options);
  secretsSent.add(body.access_token);
  return body;
}

/** A DPoP-bound token for `key` (RFC 9449 §5): a proof for POST <token endpoint> with the request. */
async function dpopBoundToken(key: ProofKey): Promise<string> {
  const body = await tokenRequest("client-dpop-auth", "client-dpop-auth-secret", {
    dpop: await makeProof({ key, method: "POST", url: idp.tokenEndpoint }),
  });
  expect(body.token_type).toBe("DPoP");
  return body.access_token;
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | undefined>;
  readonly body: any;
}

const challenge = (a: Answer) => a.headers["www-authenticate"] ?? "";
const upstreamAuth = (a: Answer) => a.body?.headers?.authorization as string | undefined;

/** One HTTPS request to the TLS listener on its own connection, with an optional client certificate. */
function tlsCall(port: number, path: string, options: { cert?: string; key?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((done, fail) => {
    const request = https.request(
      {
        host: "127.0.0.1",
        servername: "localhost",
        port,
        path,
        method: "GET",
        agent: false,
        ca: pem("ca.crt"),
        ...(options.cert ? { cert: options.cert, key: options.key } : {}),
        headers: options.headers ?? {},
      },
      (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (d) => (text += d));
        response.on("end", () => {
          const headers: Record<string, string | undefined> = {};
          for (const [k, v] of Object.entries(response.headers)) headers[k] = Array.isArray(v) ? v.join(", ") : v;
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            body = text;
          }
          done({ status: response.statusCode ?? 0, headers, body });
        });
        response.on("error", fail);
      },
    );
    request.on("error", fail);
    request.end();
  });
}

async function plainCall(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, init);
  const headers: Record<string, string | undefined> = {};
  res.headers.forEach((v, k) => {
    headers[k] = v;
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, headers, body };
}

const metricValue = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? "0");

for (const runtime of RUNTIMES) {
  describe(`proof of possession on ${runtime}`, () => {
    let gw: GatewayProcess;
    let key: ProofKey;
    let bound: string;
    let unbound: string;
    const url = (path: string) => `http://127.0.0.1:${gw.ports.proxy}${path}`;

    beforeAll(async () => {
      [gw, key, unbound] = await Promise.all([
        startGateway({ runtime, config: gatewayConfig() }),
        proofKey("ES256"),
        tokenRequest("service", SERVICE_SECRET).then((b) => b.access_token),
      ]);
      bound = await dpopBoundToken(key);
    }, 60_000);

    afterAll(async () => {
      const log = gw.output.join("\n");
      // The signature part of every token and proof sent (the payload of a token is no secret, but no log holds that either).
      for (const secret of secretsSent) {
        const signature = secret.split(".")[2]!;
        if (signature.length >= 40) expect(log).not.toContain(signature.slice(0, 40));
      }
      await gw.stop();
    });

    /** A request with `Authorization: DPoP <token>` and a proof made from `o` (or the given proof headers). */
    async function dpopCall(
      path: string,
      o: {
        token?: string;
        key?: ProofKey;
        htm?: string;
        htu?: string;
        claims?: ProofClaims;
        header?: Record<string, unknown>;
        proofs?: string[];
        headers?: Record<string, string>;
        scheme?: string;
      } = {},
    ) {
      const token = o.token ?? bound;
      const proofs = o.proofs ?? [
        await makeProof({
          key: o.key ?? key,
          method: o.htm ?? "GET",
          url: o.htu ?? url(path),
          accessToken: token,
          ...(o.claims ? { claims: o.claims } : {}),
          ...(o.header ? { header: o.header } : {}),
        }),
      ];
      for (const p of proofs) secretsSent.add(p);
      const headers: [string, string][] = [
        ["authorization", `${o.scheme ?? "DPoP"} ${token}`],
        ...proofs.map((p) => ["dpop", p] as [string, string]),
        ...Object.entries(o.headers ?? {}),
      ];
      return plainCall(url(path), { headers });
    }

    const refusedProof = (a: Answer, code = "invalid_dpop_proof") => {
      expect({ status: a.status, challenge: challenge(a).slice(0, 40) }).toEqual({
        status: 401,
        challenge: 'DPoP realm="oidc-gateway", algs="ES256 E',
      });
      expect(challenge(a)).toContain(`error="${code}"`);
    };

    describe("a DPoP-bound token (client-dpop-auth)", () => {
      it("is bound to the client's key: cnf.jkt is its RFC 7638 thumbprint", () => {
        const claims = JSON.parse(Buffer.from(bound.split(".")[1]!, "base64url").toString());
        expect(claims.cnf).toEqual({ jkt: key.jkt });
      });

      it("passes with a fresh proof; the upstream gets `Authorization: Bearer <token>` and no DPoP header", async () => {
        const a = await dpopCall("/dpop");
        expect(a.status).toBe(200);
        expect(upstreamAuth(a)).toBe(`Bearer ${bound}`);
        expect(a.body.headers.dpop).toBeUndefined();
      });

      it("needs a new proof on every request, also when the token's claims come from the cache", async () => {
        for (let i = 0; i < 3; i++) expect((await dpopCall("/dpop")).status).toBe(200);
      });

      it("accepts a proof whose htu omits the query of the request URI", async () => {
        expect((await dpopCall("/dpop?page=2", { htu: url("/dpop") })).status).toBe(200);
      });

      it("accepts a proof for a configured public origin (dpop_public_origins)", async () => {
        expect((await dpopCall("/dpop", { htu: "https://api.example.com/dpop" })).status).toBe(200);
      });

      it("accepts a proof made by hand with WebCrypto, for a token bound at the IdP with a hand-made proof", async () => {
        const hk = await handKey();
        const res = await tokenRequest("client-dpop-auth", "client-dpop-auth-secret", {
          dpop: await handMadeProof(hk, await proofClaims({ method: "POST", url: idp.tokenEndpoint })),
        });
        const claims = JSON.parse(Buffer.from(res.access_token.split(".")[1]!, "base64url").toString());
        expect(claims.cnf.jkt).toBe(await handThumbprint(hk.publicJwk));
        const proof = await handMadeProof(hk, await proofClaims({ url: url("/dpop"), accessToken: res.access_token }));
        expect((await dpopCall("/dpop", { token: res.access_token, proofs: [proof] })).status).toBe(200);
      });

      describe("refuses every proof RFC 9449 §4.3 refuses, with 401 and the DPoP challenge", () => {
        it("a replayed proof (same jti), counted in gateway_dpop_replays_rejected_total", async () => {
          const before = metricValue(await (await fetch(`${gw.adminUrl}/metrics`)).text(), "gateway_dpop_replays_rejected_total");
          const proof = await makeProof({ key, method: "GET", url: url("/dpop"), accessToken: bound });
          expect((await dpopCall("/dpop", { proofs: [proof] })).status).toBe(200);
          refusedProof(await dpopCall("/dpop", { proofs: [proof] }));
          const after = metricValue(await (await fetch(`${gw.adminUrl}/metrics`)).text(), "gateway_dpop_replays_rejected_total");
          expect(after).toBe(before + 1);
        });

        it("a proof for another method (htm)", async () => {
          refusedProof(await dpopCall("/dpop", { htm: "POST" }));
        });

        it("a proof for another URI (htu)", async () => {
          refusedProof(await dpopCall("/dpop", { htu: url("/dpop-optional") }));
        });

        it("a proof for another host, even with that host in Host or X-Forwarded-Host", async () => {
          const htu = `http://evil.example:${gw.ports.proxy}/dpop`;
          refusedProof(await dpopCall("/dpop", { htu }));
          refusedProof(
            await dpopCall("/dpop", { htu, headers: { "x-forwarded-host": `evil.example:${gw.ports.proxy}`, "x-forwarded-proto": "http" } }),
          );
          refusedProof(await dpopCall("/dpop", { htu: "https://evil.example/dpop", headers: { host: "evil.example" } }));
        });

        it("a proof issued too long ago (iat before dpop_proof_lifetime)", async () => {
          refusedProof(await dpopCall("/dpop", { claims: { iat: Math.floor(Date.now() / 1000) - 301 } }));
        });

        it("a proof issued in the future beyond dpop_proof_clock_skew (but not one 8 s ahead: clients' clocks run ahead)", async () => {
          expect((await dpopCall("/dpop", { claims: { iat: Math.floor(Date.now() / 1000) + 8 } })).status).toBe(200);
          refusedProof(await dpopCall("/dpop", { claims: { iat: Math.floor(Date.now() / 1000) + 60 } }));
        });

        it("a proof for another access token (ath)", async () => {
          refusedProof(await dpopCall("/dpop", { claims: { ath: await sha256b64u(unbound) } }));
          refusedProof(await dpopCall("/dpop", { claims: { ath: undefined } }));
        });

        it("a proof of another key: invalid_token (RFC 9449 §7.1, the key binding)", async () => {
          refusedProof(await dpopCall("/dpop", { key: await proofKey("ES256") }), "invalid_token");
        });

        it("a proof whose jwk holds the private key", async () => {
          const privateJwk = await exportJWK(key.privateKey);
          expect(privateJwk.d).toBeDefined();
          refusedProof(await dpopCall("/dpop", { header: { jwk: privateJwk } }));
        });

        it("a proof with alg none", async () => {
          const claims = await proofClaims({ url: url("/dpop"), accessToken: bound });
          refusedProof(await dpopCall("/dpop", { proofs: [unsignedProof(key.publicJwk, claims)] }));
        });

        it("a proof signed with HS256 (a symmetric key)", async () => {
          const claims = await proofClaims({ url: url("/dpop"), accessToken: bound });
          refusedProof(await dpopCall("/dpop", { proofs: [await hmacProof(claims)] }));
        });

        it("a proof with another typ", async () => {
          refusedProof(await dpopCall("/dpop", { header: { typ: "JWT" } }));
        });

        it("two DPoP headers", async () => {
          const one = () => makeProof({ key, method: "GET", url: url("/dpop"), accessToken: bound });
          refusedProof(await dpopCall("/dpop", { proofs: [await one(), await one()] }));
        });

        it("no DPoP header with the DPoP scheme", async () => {
          refusedProof(await dpopCall("/dpop", { proofs: [] }));
        });

        it("the bound token under the Bearer scheme: invalid_token (RFC 9449 §7.2)", async () => {
          refusedProof(await dpopCall("/dpop", { scheme: "Bearer", proofs: [] }), "invalid_token");
          refusedProof(await dpopCall("/dpop-optional", { scheme: "Bearer" }), "invalid_token");
        });
      });

      it("is refused under the Bearer scheme where DPoP is off, too (RFC 9449 §7.2)", async () => {
        const a = await plainCall(url("/dpop-off"), { headers: { authorization: `Bearer ${bound}` } });
        expect(a.status).toBe(401);
        expect(challenge(a)).toStartWith('Bearer realm="oidc-gateway", error="invalid_token"');
      });

      it("passes on the TLS listener with a proof for https://localhost:<tls port>", async () => {
        const proof = await makeProof({ key, method: "GET", url: `https://localhost:${gw.ports.proxyTls}/dpop`, accessToken: bound });
        const a = await tlsCall(gw.ports.proxyTls, "/dpop", { headers: { authorization: `DPoP ${bound}`, dpop: proof } });
        expect(a.status).toBe(200);
        refusedProof(
          await tlsCall(gw.ports.proxyTls, "/dpop", {
            headers: { authorization: `DPoP ${bound}`, dpop: await makeProof({ key, method: "GET", url: url("/dpop"), accessToken: bound }) },
          }),
        );
      });
    });

    describe("the DPoP modes", () => {
      it("strict: answers no credentials with 401, a DPoP challenge with algs and no error code", async () => {
        const a = await plainCall(url("/dpop"));
        expect(a.status).toBe(401);
        expect(challenge(a)).toBe('DPoP realm="oidc-gateway", algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA Ed25519"');
      });

      it("optional: answers no credentials with a Bearer and a DPoP challenge", async () => {
        const a = await plainCall(url("/dpop-optional"));
        expect(a.status).toBe(401);
        expect(challenge(a)).toBe(
          'Bearer realm="oidc-gateway", DPoP realm="oidc-gateway", algs="ES256 ES384 ES512 PS256 PS384 PS512 RS256 RS384 RS512 EdDSA Ed25519"',
        );
      });

      it("strict: refuses an unbound token (invalid_token)", async () => {
        refusedProof(await plainCall(url("/dpop"), { headers: { authorization: `Bearer ${unbound}` } }), "invalid_token");
      });

      it("optional: lets an unbound bearer token in, and checks a bound one's proof", async () => {
        expect((await plainCall(url("/dpop-optional"), { headers: { authorization: `Bearer ${unbound}` } })).status).toBe(200);
        expect((await dpopCall("/dpop-optional")).status).toBe(200);
        refusedProof(await dpopCall("/dpop-optional", { htm: "DELETE" }));
      });
    });

    describe("server nonces (dpop_use_nonce)", () => {
      it("answers a proof without a nonce with 401 use_dpop_nonce, a fresh DPoP-Nonce and Cache-Control: no-store; the retry with it passes", async () => {
        const first = await dpopCall("/dpop-nonce");
        refusedProof(first, "use_dpop_nonce");
        const nonce = first.headers["dpop-nonce"];
        expect(nonce).toBeString();
        expect(first.headers["cache-control"]).toBe("no-store");
        const retry = await dpopCall("/dpop-nonce", { claims: { nonce } });
        expect(retry.status).toBe(200);
        expect(upstreamAuth(retry)).toBe(`Bearer ${bound}`);
      });

      it("answers a nonce it never issued with use_dpop_nonce and a fresh one", async () => {
        const a = await dpopCall("/dpop-nonce", { claims: { nonce: "made-up-nonce" } });
        refusedProof(a, "use_dpop_nonce");
        expect(a.headers["dpop-nonce"]).not.toBe("made-up-nonce");
      });
    });

    describe("a certificate-bound token (cert-bound, issued over mTLS)", () => {
      let certBound: string;
      beforeAll(async () => {
        certBound = (await tokenRequest("cert-bound", "cert-bound-secret", { clientCert: { cert: pem("client.crt"), key: pem("client.key") } }))
          .access_token;
        const claims = JSON.parse(Buffer.from(certBound.split(".")[1]!, "base64url").toString());
        expect(claims.cnf["x5t#S256"]).toBeString();
      });
      const auth = (t: string) => ({ authorization: `Bearer ${t}` });
      const refused = (a: Answer) => {
        expect(a.status).toBe(401);
        expect(challenge(a)).toStartWith('Bearer realm="oidc-gateway", error="invalid_token"');
      };

      it("passes with the certificate it is bound to; the upstream gets the token", async () => {
        const a = await tlsCall(gw.ports.proxyTls, "/mtls", { cert: pem("client.crt"), key: pem("client.key"), headers: auth(certBound) });
        expect(a.status).toBe(200);
        expect(upstreamAuth(a)).toBe(`Bearer ${certBound}`);
      });

      it("is refused with another certificate of the same CA, and with a same-named one of another CA", async () => {
        refused(await tlsCall(gw.ports.proxyTls, "/mtls", { ...sibling, headers: auth(certBound) }));
        refused(await tlsCall(gw.ports.proxyTls, "/mtls", { cert: pem("other-client.crt"), key: pem("other-client.key"), headers: auth(certBound) }));
      });

      it("is refused without a certificate, on the TLS and on the plain listener", async () => {
        refused(await tlsCall(gw.ports.proxyTls, "/mtls", { headers: auth(certBound) }));
        refused(await plainCall(url("/mtls"), { headers: auth(certBound) }));
      });

      it("never trusts a caller's certificate headers, and never passes them upstream", async () => {
        const thumbprint = JSON.parse(Buffer.from(certBound.split(".")[1]!, "base64url").toString()).cnf["x5t#S256"];
        const spoofed = {
          "x-forwarded-client-cert": `Hash=${thumbprint};Cert="${encodeURIComponent(pem("client.crt"))}";Subject="CN=JohnDoe,OU=IT"`,
          "client-cert": `:${Buffer.from(pem("client.crt")).toString("base64")}:`,
        };
        refused(await tlsCall(gw.ports.proxyTls, "/mtls", { headers: { ...auth(certBound), ...spoofed } }));
        const a = await tlsCall(gw.ports.proxyTls, "/mtls", {
          cert: pem("client.crt"),
          key: pem("client.key"),
          headers: { ...auth(certBound), ...spoofed },
        });
        expect(a.status).toBe(200);
        expect(a.body.headers["x-forwarded-client-cert"]).toBeUndefined();
        expect(a.body.headers["client-cert"]).toBeUndefined();
      });

      it("strict: refuses an unbound token even with a verified certificate", async () => {
        refused(await tlsCall(gw.ports.proxyTls, "/mtls", { cert: pem("client.crt"), key: pem("client.key"), headers: auth(unbound) }));
      });

      it("optional: lets an unbound token in without a certificate, and checks a bound one", async () => {
        expect((await tlsCall(gw.ports.proxyTls, "/mtls-optional", { headers: auth(unbound) })).status).toBe(200);
        expect(
          (await tlsCall(gw.ports.proxyTls, "/mtls-optional", { cert: pem("client.crt"), key: pem("client.key"), headers: auth(certBound) })).status,
        ).toBe(200);
        refused(await tlsCall(gw.ports.proxyTls, "/mtls-optional", { headers: auth(certBound) }));
      });
    });
  });
}
