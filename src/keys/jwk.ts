/**
 * The gateway's signing keys as JWKs: which algorithms it signs with, how a key is generated,
 * checked and imported, and its public view. The public view is built from an allow-list of
 * members per key type, so a private member (`d`, `p`, `q`, `dp`, `dq`, `qi`, `oth`, `k`, ...)
 * can never reach a published JWKS, whatever else a key file carries.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";

/** JWS algorithms the gateway signs client assertions with (RFC 7518, RFC 8037). */
export const SIGNING_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

/**
 * Generated when there is no key file. RSA keys take 0.1–0.5 s each to generate, so the other
 * RSA algorithms get a key of their own the first time a `client_alg` asks for one.
 */
export const DEFAULT_ALGORITHMS: readonly SigningAlgorithm[] = ["RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA"];

/** RSA keys shorter than this are refused (RFC 7518 §3.3). */
const MIN_RSA_BITS = 2048;

const CURVES: Partial<Record<SigningAlgorithm, string>> = { ES256: "P-256", ES384: "P-384", ES512: "P-521", EdDSA: "Ed25519" };

/** The key type (and curve) an algorithm needs. */
function keyTypeOf(alg: SigningAlgorithm): { kty: "RSA" | "EC" | "OKP"; crv?: string } {
  if (alg.startsWith("RS") || alg.startsWith("PS")) return { kty: "RSA" };
  if (alg === "EdDSA") return { kty: "OKP", crv: "Ed25519" };
  return { kty: "EC", crv: CURVES[alg]! };
}

export const isSigningAlgorithm = (value: unknown): value is SigningAlgorithm =>
  typeof value === "string" && (SIGNING_ALGORITHMS as readonly string[]).includes(value);

/** Public members kept per key type; everything else is dropped. */
const PUBLIC_MEMBERS: Record<string, readonly string[]> = {
  RSA: ["kty", "n", "e"],
  EC: ["kty", "crv", "x", "y"],
  OKP: ["kty", "crv", "x"],
};
const METADATA = ["kid", "alg", "use"] as const;

/** The public part of a JWK, members in a fixed order (so equal keys serialise equally). */
export function publicView(jwk: JWK): JWK {
  const out: Record<string, unknown> = {};
  for (const name of [...(PUBLIC_MEMBERS[jwk.kty ?? ""] ?? []), ...METADATA]) {
    const value = (jwk as Record<string, unknown>)[name];
    if (value !== undefined) out[name] = value;
  }
  return out as JWK;
}

/** RFC 7638 thumbprint (SHA-256, base64url): the `kid` of every key the gateway generates. */
export const thumbprint = (jwk: JWK): Promise<string> => calculateJwkThumbprint(jwk, "sha256");

/** A fresh private JWK for `alg` with `kid` = its thumbprint, `alg` and `use: "sig"`. */
export async function generateJwk(alg: SigningAlgorithm): Promise<JWK> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...(keyTypeOf(alg).kty === "RSA" ? { modulusLength: MIN_RSA_BITS } : {}) });
  const jwk = await exportJWK(privateKey);
  return { ...jwk, kid: await thumbprint(jwk), alg, use: "sig" };
}

function rsaBits(n: unknown): number {
  if (typeof n !== "string") return 0;
  const bytes = Math.floor((n.replace(/=+$/, "").length * 3) / 4);
  return bytes * 8;
}

/**
 * Why `value` is not a private signing key the gateway can use, or `undefined` when it is.
 * Messages name the member, never its value.
 */
export function privateKeyProblem(value: unknown): string | undefined {
  if (!value || typeof value !== "object" || Array.isArray(value)) return "expected a JWK object";
  const jwk = value as Record<string, unknown>;
  if (!isSigningAlgorithm(jwk.alg)) return `expected "alg" to be one of ${SIGNING_ALGORITHMS.join(", ")}`;
  const want = keyTypeOf(jwk.alg);
  if (jwk.kty !== want.kty) return `expected "kty" "${want.kty}" for "alg" "${jwk.alg}"`;
  if (want.crv !== undefined && jwk.crv !== want.crv) return `expected "crv" "${want.crv}" for "alg" "${jwk.alg}"`;
  if (typeof jwk.d !== "string" || !jwk.d) return 'expected a private key (the "d" member is missing)';
  if (jwk.use !== undefined && jwk.use !== "sig") return 'expected "use" to be "sig" (or absent)';
  if (jwk.kid !== undefined && (typeof jwk.kid !== "string" || !jwk.kid)) return 'expected "kid" to be a non-empty string';
  if (want.kty === "RSA" && rsaBits(jwk.n) < MIN_RSA_BITS - 8) return `expected an RSA key of at least ${MIN_RSA_BITS} bits`;
  return undefined;
}

/** A non-extractable private `CryptoKey` for signing with `jwk.alg`. */
export async function importPrivateKey(jwk: JWK & { alg: SigningAlgorithm }): Promise<CryptoKey> {
  const key = await importJWK(jwk, jwk.alg, { extractable: false });
  if (!(key instanceof CryptoKey) || key.type !== "private") throw new TypeError("not a private key");
  return key;
}
