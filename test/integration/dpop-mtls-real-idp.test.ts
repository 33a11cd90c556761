/**
 * The proof-of-possession building blocks against tokens from the real development IdP
 * (oidc-provider, test/support/idp): a DPoP-bound token for `client-dpop-auth` and a
 * certificate-bound token for `cert-bound` over mTLS, verified with the IdP's JWKS.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { X509Certificate } from "node:crypto";
import { join, resolve } from "node:path";
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from "jose";
import { checkDpop, createDpopOrigins, dpopConfig } from "../../src/oidc/resource/dpop.ts";
import { checkCertificateBinding } from "../../src/oidc/resource/mtls.ts";
import { createMemoryReplayStore } from "../../src/oidc/resource/replay-store.ts";
import type { PeerCertificate } from "../../src/runtime/types.ts";
import { cert, ensureCerts } from "../support/certs.ts";
import { makeProof, proofKey, rejection, type ProofKey } from "../support/dpop-proof.ts";

const ROOT = resolve(import.meta.dir, "../..");

interface RunningIdp {
  readonly issuer: string;
  readonly tokenEndpoint: string;
  readonly jwksUri: string;
  stop(): Promise<void>;
}

async function startIdp(args: string[]): Promise<RunningIdp> {
  const child = Bun.spawn(["node", join(ROOT, "test/support/idp/main.mjs"), "--port", "0", ...args], { cwd: ROOT, stdout: "pipe", stderr: "ignore" });
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) throw new Error("the idp exited before it was ready");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const ready = JSON.parse(text.split("\n")[0]!) as { issuer: string; tokenEndpoint: string; jwksUri: string };
  return {
    ...ready,
    async stop() {
      child.kill("SIGTERM");
      await child.exited;
    },
  };
}

const basic = (id: string, secret: string) => `Basic ${btoa(`${id}:${secret}`)}`;

let plain: RunningIdp;
let secure: RunningIdp;

beforeAll(async () => {
  const dir = ensureCerts();
  [plain, secure] = await Promise.all([startIdp([]), startIdp(["--tls-dir", dir])]);
}, 30_000);

afterAll(async () => {
  await Promise.all([plain?.stop(), secure?.stop()]);
});

describe("a DPoP-bound token from the real IdP (client-dpop-auth)", () => {
  let key: ProofKey;
  let token: string;
  let claims: JWTPayload;
  const URL_ = "http://localhost:8000/anything";
  const origins = createDpopOrigins()({ tls: false, localPort: 8000 });
  const config = dpopConfig({ algorithms: ["ES256"], leeway: 5 });
  const replay = createMemoryReplayStore();

  beforeAll(async () => {
    key = await proofKey("ES256");
    const response = await fetch(plain.tokenEndpoint, {
      method: "POST",
      headers: {
        authorization: basic("client-dpop-auth", "client-dpop-auth-secret"),
        "content-type": "application/x-www-form-urlencoded",
        dpop: await makeProof({ key, method: "POST", url: plain.tokenEndpoint }),
      },
      body: "grant_type=client_credentials",
    });
    const body = (await response.json()) as { access_token: string; token_type: string };
    expect(response.status).toBe(200);
    expect(body.token_type).toBe("DPoP");
    token = body.access_token;
    ({ payload: claims } = await jwtVerify(token, createRemoteJWKSet(new URL(plain.jwksUri)), { issuer: plain.issuer }));
  });

  const input = async (over: { key?: ProofKey; method?: string; scheme?: "Bearer" | "DPoP" } = {}) => {
    const proof = await makeProof({ key: over.key ?? key, method: over.method ?? "GET", url: URL_, accessToken: token });
    return {
      mode: "strict" as const,
      scheme: over.scheme ?? ("DPoP" as const),
      method: "GET",
      url: URL_,
      headers: new Headers({ dpop: proof }),
      origins,
      accessToken: token,
      claims,
      config,
      replay,
    };
  };

  it("is bound to the thumbprint of the client's key", () => {
    expect((claims.cnf as { jkt: string }).jkt).toBe(key.jkt);
  });

  it("passes with a fresh proof of that key", async () => {
    expect((await checkDpop(await input()))?.jkt).toBe(key.jkt);
  });

  it("fails as invalid_token with a proof of another key", async () => {
    expect((await rejection(checkDpop(await input({ key: await proofKey("ES256") })))).error).toBe("invalid_token");
  });

  it("fails as invalid_token under the Bearer scheme", async () => {
    expect((await rejection(checkDpop(await input({ scheme: "Bearer" })))).error).toBe("invalid_token");
  });

  it("fails as invalid_dpop_proof when the proof is played again", async () => {
    const once = await input();
    await checkDpop(once);
    expect((await rejection(checkDpop(once))).error).toBe("invalid_dpop_proof");
  });
});

describe("a certificate-bound token from the real IdP (cert-bound over mTLS)", () => {
  let claims: JWTPayload;
  const peer = (name: string): PeerCertificate => ({
    der: new Uint8Array(new X509Certificate(cert(name)).raw),
    subject: "CN=JohnDoe,OU=IT",
    verified: true,
  });

  beforeAll(async () => {
    const tls = { ca: cert("ca.crt"), cert: cert("client.crt"), key: cert("client.key") };
    const response = await fetch(secure.tokenEndpoint, {
      method: "POST",
      headers: { authorization: basic("cert-bound", "cert-bound-secret"), "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials",
      tls,
    } as RequestInit);
    expect(response.status).toBe(200);
    const { access_token } = (await response.json()) as { access_token: string };
    const jwks = (await (await fetch(secure.jwksUri, { tls: { ca: tls.ca } } as RequestInit)).json()) as { keys: unknown[] };
    const { createLocalJWKSet } = await import("jose");
    ({ payload: claims } = await jwtVerify(access_token, createLocalJWKSet(jwks as never), { issuer: secure.issuer }));
  });

  it("passes with the JohnDoe certificate it was issued over", async () => {
    expect(await checkCertificateBinding({ mode: "strict", claims, peerCertificate: peer("client.crt") })).toBe(
      (claims.cnf as Record<string, string>)["x5t#S256"],
    );
  });

  it("fails as invalid_token with the other CA's JohnDoe certificate", async () => {
    expect((await rejection(checkCertificateBinding({ mode: "strict", claims, peerCertificate: peer("other-client.crt") }))).error).toBe(
      "invalid_token",
    );
  });

  it("fails as invalid_token without a certificate", async () => {
    expect((await rejection(checkCertificateBinding({ mode: "optional", claims, peerCertificate: undefined }))).error).toBe("invalid_token");
  });
});
