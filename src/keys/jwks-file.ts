/**
 * The `[keys] jwks_file` format: a JWKS of the current private signing keys, and the public
 * keys a rotation retired with the time until which they stay published:
 *
 *   { "keys": [ {private JWK}, ... ],
 *     "retired": [ { "until": <epoch seconds>, "jwk": {public JWK}, "private": {private JWK} }, ... ],
 *     "signing_delay_until": <epoch seconds> }
 *
 * The keys the last rotation retired keep their private half (`private`) while they are
 * published, so an assertion the IdP refuses right after a rotation can be signed again with the
 * key it knows; until `signing_delay_until` they still sign (the IdP has not fetched the new set).
 *
 * `retired` is an extra member, which RFC 7517 §5 lets JWKS readers ignore: the file stays a
 * JWKS for any tool. A file written by hand may leave out `kid` (the RFC 7638 thumbprint is
 * used) and `retired`. Checking is strict: a key the gateway cannot sign with is an error,
 * never skipped, so a typo cannot silently change which keys the IdP is given.
 */
import type { JWK } from "jose";
import { importPrivateKey, privateKeyProblem, publicView, thumbprint, type SigningAlgorithm } from "./jwk.ts";

export interface CurrentKey {
  /** The private JWK as stored (with its `kid`). */
  readonly jwk: JWK & { kid: string; alg: SigningAlgorithm };
  readonly privateKey: CryptoKey;
}

export interface RetiredKey {
  /** Public members only. */
  readonly jwk: JWK & { kid: string };
  /** Epoch ms until which it stays published. */
  readonly until: number;
  /** The private key, for the keys the last rotation retired (see `KeySet.signingDelayUntil`). */
  readonly signer?: CurrentKey | undefined;
}

export interface KeySet {
  readonly current: readonly CurrentKey[];
  readonly retired: readonly RetiredKey[];
  /** Epoch ms until which the retired keys with a `signer` still sign (unset: the current keys sign). */
  readonly signingDelayUntil?: number | undefined;
}

/** Largest key file read: a JWKS of a few dozen keys is a few tens of KiB. */
const MAX_JWKS_FILE_BYTES = 1024 * 1024;

/** Parses and checks a key file's text; throws `Error` with a message that names the member. */
export async function parseKeyFile(text: string): Promise<KeySet> {
  if (text.length > MAX_JWKS_FILE_BYTES) throw new Error(`it is larger than ${MAX_JWKS_FILE_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error("it is not JSON");
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) throw new Error('expected a JSON object with a "keys" array');
  const file = json as Record<string, unknown>;
  if (!Array.isArray(file.keys) || file.keys.length === 0) throw new Error('expected a non-empty "keys" array');

  const current: CurrentKey[] = [];
  const kids = new Set<string>();
  for (const [i, value] of file.keys.entries()) {
    const problem = privateKeyProblem(value);
    if (problem) throw new Error(`keys[${i}]: ${problem}`);
    const raw = value as JWK & { alg: SigningAlgorithm };
    const kid = raw.kid ?? (await thumbprint(raw));
    if (kids.has(kid)) throw new Error(`keys[${i}]: "kid" "${kid}" is used twice`);
    kids.add(kid);
    let privateKey: CryptoKey;
    try {
      privateKey = await importPrivateKey(raw);
    } catch {
      throw new Error(`keys[${i}]: not a usable ${raw.alg} private key`);
    }
    current.push({ jwk: { ...raw, kid, use: "sig" }, privateKey });
  }

  const retired: RetiredKey[] = [];
  if (file.retired !== undefined) {
    if (!Array.isArray(file.retired)) throw new Error('expected "retired" to be an array');
    for (const [i, value] of file.retired.entries()) {
      const entry = value as { until?: unknown; jwk?: unknown } | null;
      if (!entry || typeof entry !== "object" || typeof entry.until !== "number" || !Number.isFinite(entry.until)) {
        throw new Error(`retired[${i}]: expected { "until": <epoch seconds>, "jwk": {...} }`);
      }
      const jwk = entry.jwk as JWK | undefined;
      if (!jwk || typeof jwk !== "object" || typeof jwk.kid !== "string" || typeof jwk.kty !== "string") {
        throw new Error(`retired[${i}]: expected a public JWK with "kty" and "kid"`);
      }
      if (kids.has(jwk.kid)) continue; // back in use (restored by hand): published as current
      const signer = await retiredSigner((entry as { private?: unknown }).private, jwk.kid, i);
      retired.push({ jwk: publicView(jwk) as JWK & { kid: string }, until: entry.until * 1000, ...(signer ? { signer } : {}) });
    }
  }
  const delay = file.signing_delay_until;
  if (delay !== undefined && (typeof delay !== "number" || !Number.isFinite(delay)))
    throw new Error('expected "signing_delay_until" to be epoch seconds');
  return { current, retired, ...(typeof delay === "number" ? { signingDelayUntil: delay * 1000 } : {}) };
}

/** The private half of a retired key (`retired[i].private`), checked like a current key. */
async function retiredSigner(value: unknown, kid: string, i: number): Promise<CurrentKey | undefined> {
  if (value === undefined) return undefined;
  const problem = privateKeyProblem(value);
  if (problem) throw new Error(`retired[${i}].private: ${problem}`);
  const raw = value as JWK & { alg: SigningAlgorithm };
  try {
    return { jwk: { ...raw, kid, use: "sig" }, privateKey: await importPrivateKey(raw) };
  } catch {
    throw new Error(`retired[${i}].private: not a usable ${raw.alg} private key`);
  }
}

/** The file text for `set` (retired keys whose time has passed are left out). */
export function serializeKeyFile(set: KeySet, now: number): string {
  return `${JSON.stringify(
    {
      keys: set.current.map((k) => k.jwk),
      retired: set.retired
        .filter((r) => r.until > now)
        .map((r) => ({ until: Math.ceil(r.until / 1000), jwk: r.jwk, ...(r.signer ? { private: r.signer.jwk } : {}) })),
      ...(set.signingDelayUntil !== undefined && set.signingDelayUntil > now ? { signing_delay_until: Math.ceil(set.signingDelayUntil / 1000) } : {}),
    },
    null,
    2,
  )}\n`;
}
