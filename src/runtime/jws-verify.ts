/**
 * Synchronous JWS signature checks through `node:crypto`, which Bun and Deno both provide:
 * WebCrypto's `subtle.verify` answers through a promise and costs more CPU per check on Bun,
 * which a DPoP proof pays on every request (docs/benchmarks.md).
 */
import { nodeCrypto } from "./builtins.ts";
import type { KeyObject, VerifyKeyObjectInput, VerifyPublicKeyInput } from "node:crypto";

type Check = (data: Uint8Array, signature: Uint8Array) => boolean;

const HASH: Readonly<Record<string, string>> = { "256": "sha256", "384": "sha384", "512": "sha512" };
const CURVE: Readonly<Record<string, string>> = { ES256: "prime256v1", ES384: "secp384r1", ES512: "secp521r1" };

/**
 * A signature check for `alg` with the public `jwk`, or undefined when this is not a plain case
 * (an unknown algorithm, a key of another type or curve, an RSA key under 2048 bits, a private
 * key): the caller then uses WebCrypto, which refuses or accepts exactly as before.
 * The check throws only when the runtime fails, never for a bad signature.
 */
export function jwsVerifier(jwk: Readonly<Record<string, unknown>>, alg: string): Check | undefined {
  // A private JWK would give its public half here; it is refused, not verified with.
  if (jwk.d !== undefined || jwk.k !== undefined) return undefined;
  let key: KeyObject;
  try {
    key = nodeCrypto().createPublicKey({ key: jwk as JsonWebKey, format: "jwk" });
  } catch {
    return undefined;
  }
  if (key.type !== "public") return undefined;
  const details = key.asymmetricKeyDetails ?? {};
  const family = alg.slice(0, 2);
  const hash = HASH[alg.slice(2)];
  let input: VerifyKeyObjectInput | VerifyPublicKeyInput | KeyObject;
  let digest: string | null;
  if ((family === "RS" || family === "PS") && hash && key.asymmetricKeyType === "rsa") {
    if ((details.modulusLength ?? 0) < 2048) return undefined;
    digest = hash;
    input = family === "PS" ? { key, padding: nodeCrypto().constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) >> 3 } : key;
  } else if (family === "ES" && hash && key.asymmetricKeyType === "ec" && details.namedCurve === CURVE[alg]) {
    digest = hash;
    input = { key, dsaEncoding: "ieee-p1363" };
  } else if ((alg === "EdDSA" || alg === "Ed25519") && key.asymmetricKeyType === "ed25519") {
    digest = null;
    input = key;
  } else return undefined;
  // A malformed signature gives false; a throw is the runtime failing and reaches the caller as one.
  return (data, signature) => nodeCrypto().verify(digest, data, input, signature);
}
