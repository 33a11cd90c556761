/**
 * DPoP proofs for tests, made two ways: with jose (`makeProof`) and by hand with WebCrypto only
 * (`handMadeProof`, `handThumbprint`), so the gateway's jose-based verifier is not only ever
 * tested against jose; their claims (`proofClaims`), and the error a refused proof gives (`rejection`).
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import { AuthError } from "../../src/errors.ts";

export interface ProofKey {
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly alg: string;
  /** RFC 7638 thumbprint, what a bound token carries as `cnf.jkt`. */
  readonly jkt: string;
}

export async function proofKey(alg = "ES256"): Promise<ProofKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { privateKey, publicJwk, alg, jkt: await calculateJwkThumbprint(publicJwk, "sha256") };
}

export const b64u = (bytes: Uint8Array | string): string =>
  Buffer.from(typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes).toString("base64url");

export async function sha256b64u(text: string): Promise<string> {
  return b64u(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))));
}

export interface ProofClaims {
  htm?: unknown;
  htu?: unknown;
  iat?: unknown;
  jti?: unknown;
  ath?: unknown;
  nonce?: unknown;
  [k: string]: unknown;
}

export interface ProofOptions {
  readonly key: ProofKey;
  readonly method?: string;
  readonly url?: string;
  /** The access token whose hash goes into `ath` (omit `ath` with `ath: undefined` in claims). */
  readonly accessToken?: string;
  /** Claims that replace or remove (`undefined`) the defaults. */
  readonly claims?: ProofClaims;
  /** Header members that replace the defaults (`typ`, `alg`, `jwk`). */
  readonly header?: Record<string, unknown>;
  readonly now?: number;
}

/** A proof's claims: `htm`, `htu`, `iat` now, a fresh `jti`, and `ath` for `accessToken`; `claims` replace or remove them. */
export async function proofClaims(o: Omit<ProofOptions, "key" | "header">): Promise<Record<string, unknown>> {
  const claims: Record<string, unknown> = {
    htm: o.method ?? "GET",
    htu: o.url ?? "http://localhost:8000/resource",
    iat: o.now ?? Math.floor(Date.now() / 1000),
    jti: crypto.randomUUID(),
    ...(o.accessToken !== undefined ? { ath: await sha256b64u(o.accessToken) } : {}),
  };
  for (const [k, v] of Object.entries(o.claims ?? {})) {
    if (v === undefined) delete claims[k];
    else claims[k] = v;
  }
  return claims;
}

/** A proof signed with jose. */
export async function makeProof(o: ProofOptions): Promise<string> {
  const header = { typ: "dpop+jwt", alg: o.key.alg, jwk: o.key.publicJwk, ...o.header };
  return new SignJWT(await proofClaims(o)).setProtectedHeader(header as never).sign(o.key.privateKey);
}

// ---------------------------------------------------------------------------------------------
// Independent implementation: WebCrypto and JSON only.

export interface HandKey {
  readonly privateKey: globalThis.CryptoKey;
  readonly publicJwk: JsonWebKey;
}

/** An ES256 key pair made with WebCrypto directly. */
export async function handKey(): Promise<HandKey> {
  const pair = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"])) as CryptoKeyPair;
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  return { privateKey: pair.privateKey, publicJwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } };
}

/** RFC 7638 §3: SHA-256 over the required members in lexicographic order, no whitespace. */
export async function handThumbprint(jwk: JsonWebKey): Promise<string> {
  const canonical = `{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`;
  return sha256b64u(canonical);
}

/** A compact JWS built by hand: ES256 (WebCrypto's P1363 r||s is the JWS form, RFC 7518 §3.4). */
export async function handMadeProof(key: HandKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  const h = b64u(JSON.stringify({ typ: "dpop+jwt", alg: "ES256", jwk: key.publicJwk, ...header }));
  const p = b64u(JSON.stringify(claims));
  const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.privateKey, new TextEncoder().encode(`${h}.${p}`));
  return `${h}.${p}.${b64u(new Uint8Array(signature))}`;
}

/** `alg: none`: header and payload, empty signature. */
export function unsignedProof(jwk: unknown, claims: Record<string, unknown>): string {
  return `${b64u(JSON.stringify({ typ: "dpop+jwt", alg: "none", jwk }))}.${b64u(JSON.stringify(claims))}.`;
}

/** An HS256 proof with a symmetric key embedded as an `oct` JWK. */
export async function hmacProof(claims: Record<string, unknown>): Promise<string> {
  const secret = crypto.getRandomValues(new Uint8Array(32));
  const h = b64u(JSON.stringify({ typ: "dpop+jwt", alg: "HS256", jwk: { kty: "oct", k: b64u(secret) } }));
  const p = b64u(JSON.stringify(claims));
  const key = await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${h}.${p}`));
  return `${h}.${p}.${b64u(new Uint8Array(mac))}`;
}

/** The `AuthError` that `check` (a proof's or a certificate binding's check) rejects with; fails when it resolves. */
export async function rejection(check: Promise<unknown>): Promise<AuthError> {
  try {
    await check;
  } catch (error) {
    if (error instanceof AuthError) return error;
    throw error;
  }
  throw new Error("expected a rejection");
}
