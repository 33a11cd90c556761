/**
 * DPoP proof verification at a resource server (RFC 9449 §4.3, §7, §9), as a pure function of
 * the request as the gateway received it, the access token and its verified claims.
 *
 * Which URL is "the request's" (`htu`): the scheme is the listener's (https on
 * `proxy_tls_listen`, http on `proxy_listen`), never `X-Forwarded-Proto`; the authority must be
 * one of the origins this gateway knows it is reached as: the operator's configured public
 * origins, plus the loopback names (localhost, 127.0.0.1, [::1]) at the listener's own port.
 * The `Host` / `X-Forwarded-Host` headers are not consulted at all, so a proof made for another
 * host never passes by sending that host's name along with it. Behind a load balancer or on a
 * public name, configure the public origin (e.g. `https://api.example.com`).
 * The path is the request path as received, before `strip_path`.
 */
import { base64url as b64u, calculateJwkThumbprint, decodeProtectedHeader, importJWK, jwtVerify, type CryptoKey, type JWK } from "jose";
import { AuthError, CryptoFailureError, type Challenge, type OAuthErrorCode, webCryptoFailure } from "../../errors.ts";
import { timingSafeEqual, type DpopNonces } from "./dpop-nonce.ts";
import { replayKey, replayKeySync, type ReplayStore, type Sha256 } from "./replay-store.ts";
import { base64url } from "../../lib/base64url.ts";
import { ASYMMETRIC_ALGORITHMS, PRIVATE_JWK_MEMBERS } from "../../lib/jwa.ts";

/** Kong's `proof_of_possession_dpop` / `proof_of_possession_mtls` values. */
export type PopMode = "off" | "optional" | "strict";

/** Asymmetric JWS algorithms a DPoP proof may use; `none` and HMAC never are (RFC 9449 §4.2). */
export const DPOP_ALGORITHMS: readonly string[] = ASYMMETRIC_ALGORITHMS;

export interface DpopConfig {
  /** Accepted proof algorithms, a subset of `DPOP_ALGORITHMS`; also sent as `algs` in challenges. */
  readonly algorithms: readonly string[];
  /** How long after its `iat` a proof is accepted, in seconds (`dpop_proof_lifetime`, default 300). */
  readonly proofLifetime: number;
  /** Clock skew tolerated on `iat`, both ways, in seconds (the plugin's `leeway`). */
  readonly leeway: number;
  /** How far ahead of ours a client's clock may be: `iat` up to this many seconds in the future (`dpop_proof_clock_skew`, default 10). */
  readonly clockSkew: number;
  /** Present when `dpop_use_nonce` is on: proofs must carry a current server nonce. */
  readonly nonces?: DpopNonces;
  /** The runtime's synchronous SHA-256, for replay keys without a WebCrypto round trip. */
  readonly sha256?: Sha256;
  /** The runtime's synchronous signature check (`Runtime.jwsVerifier`), used where it takes a key. */
  readonly jwsVerifier?: JwsVerifier;
  /** Proof headers already seen with a valid signature (see `ProofKeys`). */
  readonly proofKeys?: ProofKeys;
}

export interface DpopConfigInput {
  readonly algorithms?: readonly string[];
  readonly proofLifetime?: number;
  readonly leeway?: number;
  readonly clockSkew?: number;
  readonly nonces?: DpopNonces;
  readonly sha256?: Sha256;
  readonly jwsVerifier?: JwsVerifier;
}

/** A synchronous check of a JWS signature with a public JWK; undefined where WebCrypto must judge. */
type JwsVerifier = (jwk: Readonly<Record<string, unknown>>, alg: string) => ((data: Uint8Array, signature: Uint8Array) => boolean) | undefined;

/** What a proof's protected header gives, once checked: its key imported and its RFC 7638 thumbprint. */
interface ProofKey {
  readonly key: CryptoKey;
  /** The same key's synchronous check, for a header with nothing but typ, alg, jwk and plain members. */
  readonly check: ((data: Uint8Array, signature: Uint8Array) => boolean) | undefined;
  /** Undefined when the key has no thumbprint (refused at the binding check, as before). */
  readonly jkt: string | undefined;
}

/** Proof headers seen before; a client's proofs all carry the same one (typ, alg, jwk). */
const MAX_PROOF_KEYS = 1024;

/**
 * The checked protected headers of proofs whose signature verified, by their base64url text: a
 * client signs every proof with one key, so the header (public data) is the same each time and
 * its key is imported and thumbprinted once, not per request (WebCrypto round trips).
 * Bounded, oldest first out.
 */
class ProofKeys {
  readonly #keys = new Map<string, ProofKey>();
  get(segment: string): ProofKey | undefined {
    return this.#keys.get(segment);
  }
  remember(segment: string, key: ProofKey): void {
    if (this.#keys.size >= MAX_PROOF_KEYS) this.#keys.delete(this.#keys.keys().next().value!);
    this.#keys.set(segment, key);
  }
}

/** Checks and completes a DPoP config once, at start. */
/** Default of `dpop_proof_clock_skew`: clients' clocks run a few seconds ahead (other resource servers allow 5-60 s). */
const DPOP_CLOCK_SKEW = 10;

export function dpopConfig(input: DpopConfigInput = {}): DpopConfig {
  const algorithms = input.algorithms ?? DPOP_ALGORITHMS;
  if (!algorithms.length) throw new RangeError("expected at least one dpop signing algorithm");
  for (const alg of algorithms) {
    if (!DPOP_ALGORITHMS.includes(alg))
      throw new RangeError(`dpop proofs need an asymmetric algorithm, "${alg}" is not one of ${DPOP_ALGORITHMS.join(", ")}`);
  }
  const proofLifetime = input.proofLifetime ?? 300;
  const leeway = input.leeway ?? 0;
  const clockSkew = input.clockSkew ?? DPOP_CLOCK_SKEW;
  if (!(clockSkew >= 0)) throw new RangeError("'dpop_proof_clock_skew' must not be negative");
  if (!(proofLifetime > 0)) throw new RangeError("'dpop_proof_lifetime' must be positive");
  if (!(leeway >= 0)) throw new RangeError("'leeway' must not be negative");
  return {
    algorithms: [...algorithms],
    proofLifetime,
    leeway,
    clockSkew,
    ...(input.nonces ? { nonces: input.nonces } : {}),
    ...(input.sha256 ? { sha256: input.sha256 } : {}),
    ...(input.jwsVerifier ? { jwsVerifier: input.jwsVerifier } : {}),
    proofKeys: new ProofKeys(),
  };
}

// ---------------------------------------------------------------------------------------------
// htu: RFC 3986 §6.2.2 (case, percent-encoding, dot segments) and §6.2.3 (scheme-based) forms.

const UNRESERVED_PCT = /%(2[DdEe]|3[0-9]|[46][1-9A-Fa-f]|[57][0-9Aa]|5[Ff]|7[Ee])/g;

/** Percent-encoding normalised: hex digits upper case, unreserved characters decoded. */
function normalizePercent(path: string): string {
  if (!path.includes("%")) return path;
  return path.replace(/%[0-9a-fA-F]{2}/g, (m) => m.toUpperCase()).replace(UNRESERVED_PCT, (m) => String.fromCharCode(parseInt(m.slice(1), 16)));
}

export interface NormalizedUri {
  /** `scheme://host[:port]`, lower case, default port dropped. */
  readonly origin: string;
  /** Path with dot segments removed and percent-encoding normalised; `/` when empty. */
  readonly path: string;
}

/**
 * Normalises an http(s) URI for comparison, dropping query and fragment. The WHATWG parser
 * lower-cases scheme and host, drops default ports, turns an empty path into `/` and removes
 * dot segments (also `%2E` ones); percent-encoding is left to us.
 */
export function normalizeHttpUri(uri: string): NormalizedUri | undefined {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return undefined;
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.username || url.password) return undefined;
  return { origin: url.origin, path: normalizePercent(url.pathname) };
}

/** An origin from config (`https://api.example.com`), checked once at start. */
export function normalizeOrigin(origin: string): string {
  const n = normalizeHttpUri(origin);
  if (n?.path !== "/" || /[?#]/.test(origin)) throw new RangeError(`expected an origin such as "https://api.example.com", got "${origin}"`);
  return n.origin;
}

export interface ListenerFacts {
  /** True on the TLS listener. */
  readonly tls: boolean;
  /** The port the listener accepted the connection on. */
  readonly localPort: number;
}

/**
 * The origins a proof's `htu` may name for requests arriving on a listener: the configured
 * public origins and the loopback names at the listener's scheme and port. Built once per
 * listener and cached.
 */
export function createDpopOrigins(publicOrigins: readonly string[] = []): (listener: ListenerFacts) => ReadonlySet<string> {
  const configured = publicOrigins.map(normalizeOrigin);
  const cache = new Map<string, ReadonlySet<string>>();
  return (listener) => {
    const scheme = listener.tls ? "https" : "http";
    const id = `${scheme}:${listener.localPort}`;
    let set = cache.get(id);
    if (!set) {
      const loopback = ["localhost", "127.0.0.1", "[::1]"].map((h) => new URL(`${scheme}://${h}:${listener.localPort}`).origin);
      set = new Set([...configured, ...loopback]);
      if (cache.size < 64) cache.set(id, set);
    }
    return set;
  };
}

// ---------------------------------------------------------------------------------------------
// Token hash and key binding.

const encoder = new TextEncoder();

/** `ath`: base64url(SHA-256(ASCII(access token))) (RFC 9449 §4.2). Cache it with the token's claims. */
export async function accessTokenHash(token: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(token))));
}

/** The `cnf.jkt` of verified token claims, if the token is DPoP-bound (RFC 9449 §6.1). */
export function boundJkt(claims: Readonly<Record<string, unknown>>): string | undefined {
  const cnf = claims.cnf;
  if (!cnf || typeof cnf !== "object") return undefined;
  const jkt = (cnf as Record<string, unknown>).jkt;
  return typeof jkt === "string" && jkt ? jkt : undefined;
}

// ---------------------------------------------------------------------------------------------
// Errors.

/** The RFC 9449 §7.1 challenge; the plugin may replace it with its own (realm, Bearer). */
function dpopChallenges(config: DpopConfig): Challenge[] {
  return [{ scheme: "DPoP", params: { algs: config.algorithms.join(" ") } }];
}

function fail(config: DpopConfig, error: OAuthErrorCode, description: string, headers?: Record<string, string>): AuthError {
  return new AuthError({ error, description, challenges: dpopChallenges(config), ...(headers ? { headers } : {}) });
}

// ---------------------------------------------------------------------------------------------
// The proof.

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** Larger proofs are refused before any parsing; a proof with an RSA-4096 key is ~2 KB. */
const MAX_PROOF_LENGTH = 8192;
const MAX_JTI_LENGTH = 256;

export interface DpopProofInput {
  /** The request method as received. */
  readonly method: string;
  /** The request URL as received by the listener; only its path is used (see the module comment). */
  readonly url: string;
  readonly headers: Headers;
  /** Origins the `htu` may name, from `createDpopOrigins(...)(conn)`. */
  readonly origins: ReadonlySet<string>;
  /** The access token presented with the `DPoP` scheme. */
  readonly accessToken: string;
  /** `accessTokenHash(accessToken)`, when the caller cached it with the claims. */
  readonly accessTokenHash?: string;
  /** The token's verified claims (or introspection response); `cnf.jkt` binds it to a key. */
  readonly claims: Readonly<Record<string, unknown>>;
  readonly config: DpopConfig;
  readonly replay: ReplayStore;
  /** Seconds since the epoch (tests). */
  readonly now?: number;
}

export interface VerifiedDpopProof {
  /** RFC 7638 thumbprint of the proof key, equal to the token's `cnf.jkt`. */
  readonly jkt: string;
  readonly jti: string;
  readonly iat: number;
}

/**
 * Every check of RFC 9449 §4.3 and the key binding of §7.1, in the order that spends the least
 * on bad input: shape, header, signature, claims, nonce, token hash, binding, replay. The `jti`
 * is recorded only for a proof that passed everything else, so garbage cannot fill the store.
 * Throws `AuthError` with `invalid_dpop_proof`, `use_dpop_nonce` (with a fresh `DPoP-Nonce`,
 * which makes the mapper add `Cache-Control: no-store`) or `invalid_token` (wrong key binding).
 */
export async function verifyDpopProof(input: DpopProofInput): Promise<VerifiedDpopProof> {
  const { config } = input;
  const now = input.now ?? Math.floor(Date.now() / 1000);

  // 1. Exactly one DPoP header holding one JWT. Headers joins repeated fields with ", ", and a
  //    compact JWS has neither commas nor spaces.
  const proof = input.headers.get("dpop");
  if (proof === null || proof === "") throw fail(config, "invalid_dpop_proof", "missing 'DPoP' proof header");
  if (proof.length > MAX_PROOF_LENGTH) throw fail(config, "invalid_dpop_proof", "'DPoP' proof is too large");
  if (proof.includes(",")) throw fail(config, "invalid_dpop_proof", "expected exactly one 'DPoP' header");
  if (!COMPACT_JWS.test(proof)) throw fail(config, "invalid_dpop_proof", "'DPoP' header is not a single JWT in compact serialization");

  // 2. Header: typ, alg, jwk (RFC 9449 §4.2), checked once per distinct header (see ProofKeys).
  const segment = proof.slice(0, proof.indexOf("."));
  const known = config.proofKeys?.get(segment);
  const proofKey = known ?? (await checkProofHeader(proof, config));

  // 3. Signature by the embedded key (jose refuses symmetric and private keys here too).
  let payload: Record<string, unknown>;
  try {
    payload = proofKey.check
      ? verifiedClaims(proof, proofKey.check, now, config.leeway)
      : (
          await jwtVerify(proof, proofKey.key, {
            algorithms: [...config.algorithms],
            typ: "dpop+jwt",
            currentDate: new Date(now * 1000),
            clockTolerance: config.leeway,
          })
        ).payload;
  } catch (error) {
    throw signatureFailure(config, error);
  }
  if (!known) config.proofKeys?.remember(segment, proofKey);

  // 4. Claims: jti, htm, htu, iat.
  const { jti, htm, htu, iat } = payload;
  if (typeof jti !== "string" || !jti || jti.length > MAX_JTI_LENGTH)
    throw fail(config, "invalid_dpop_proof", "'jti' of the proof is missing or invalid");
  if (htm !== input.method) throw fail(config, "invalid_dpop_proof", "'htm' of the proof does not match the request method");
  if (typeof htu !== "string" || !htuMatches(htu, input.url, input.origins))
    throw fail(config, "invalid_dpop_proof", "'htu' of the proof does not match the request URI");
  if (typeof iat !== "number" || !Number.isFinite(iat)) throw fail(config, "invalid_dpop_proof", "'iat' of the proof is missing");
  // RFC 9449 §11.1: a client's clock a few seconds ahead is tolerated whatever `leeway` says.
  if (iat > now + Math.max(config.leeway, config.clockSkew)) throw fail(config, "invalid_dpop_proof", "'iat' of the proof is in the future");
  if (iat < now - config.proofLifetime - config.leeway)
    throw fail(config, "invalid_dpop_proof", "the proof is too old ('iat' outside 'dpop_proof_lifetime')");

  // 5. Server nonce (RFC 9449 §9): missing or stale → use_dpop_nonce with a fresh one.
  if (config.nonces) {
    const nonce = payload.nonce;
    if (typeof nonce !== "string" || !(await config.nonces.verify(nonce, now * 1000))) {
      const fresh = await config.nonces.current(now * 1000);
      throw fail(config, "use_dpop_nonce", "resource server requires nonce in dpop proof", { "dpop-nonce": fresh });
    }
  }

  // 6. ath binds the proof to this access token.
  const ath = input.accessTokenHash ?? (await accessTokenHash(input.accessToken));
  if (typeof payload.ath !== "string" || !timingSafeEqual(payload.ath, ath))
    throw fail(config, "invalid_dpop_proof", "'ath' of the proof does not match the access token");

  // 7. The token must be bound to the proof key (RFC 9449 §7.1: a binding mismatch is invalid_token).
  const expected = boundJkt(input.claims);
  if (!expected) throw fail(config, "invalid_token", "the access token is not dpop-bound");
  const jkt = proofKey.jkt;
  if (jkt === undefined) throw fail(config, "invalid_dpop_proof", "'jwk' header of the proof is not a valid key");
  if (!timingSafeEqual(jkt, expected)) throw fail(config, "invalid_token", "invalid dpop key binding");

  // 8. Replay: the same jti for the same key is accepted once while the proof could be valid.
  const expiresAt = (iat + config.proofLifetime + config.leeway) * 1000 + 1000;
  const key = config.sha256 ? replayKeySync(jkt, jti, config.sha256) : await replayKey(jkt, jti);
  const fresh = input.replay.checkAndRecord(key, expiresAt, now * 1000);
  if (!(typeof fresh === "boolean" ? fresh : await fresh)) {
    throw fail(config, "invalid_dpop_proof", "the proof was already used ('jti' replayed)");
  }
  return { jkt, jti, iat };
}

/**
 * The checks of a proof's protected header (typ, alg, a public jwk) and its key, imported as
 * jose's `EmbeddedJWK` does, with the key's thumbprint. Throws `invalid_dpop_proof`.
 */
async function checkProofHeader(proof: string, config: DpopConfig): Promise<ProofKey> {
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    throw fail(config, "invalid_dpop_proof", "'DPoP' proof header is not valid JSON");
  }
  if (typeof header.typ !== "string" || header.typ.toLowerCase() !== "dpop+jwt")
    throw fail(config, "invalid_dpop_proof", "'typ' of the proof must be \"dpop+jwt\"");
  if (typeof header.alg !== "string" || !config.algorithms.includes(header.alg)) {
    throw fail(config, "invalid_dpop_proof", `'alg' of the proof must be one of ${config.algorithms.join(", ")}`);
  }
  const jwk = header.jwk as Record<string, unknown> | undefined;
  if (!jwk || typeof jwk !== "object" || Array.isArray(jwk))
    throw fail(config, "invalid_dpop_proof", "'jwk' header of the proof must be a public JWK");
  if (PRIVATE_JWK_MEMBERS.some((m) => m in jwk)) throw fail(config, "invalid_dpop_proof", "'jwk' header of the proof must not contain a private key");
  let key: CryptoKey;
  try {
    const imported = await importJWK({ ...(jwk as JWK), ext: true }, header.alg);
    if (imported instanceof Uint8Array || imported.type !== "public") throw new TypeError("not a public key");
    key = imported;
  } catch {
    throw fail(config, "invalid_dpop_proof", "'DPoP' proof signature or structure is invalid");
  }
  let jkt: string | undefined;
  try {
    jkt = await calculateJwkThumbprint(jwk as JWK, "sha256");
  } catch {
    jkt = undefined;
  }
  // WebCrypto accepted the key; the synchronous check only stands in for its signature check,
  // and only for a header jose would read as typ, alg and jwk alone (no crit, no b64).
  const plain = !("crit" in header) && !("b64" in header);
  const check = plain ? config.jwsVerifier?.(jwk, header.alg) : undefined;
  return { key, jkt, check };
}

const decoder = new TextDecoder();

/**
 * What jose's `jwtVerify` checks of a proof whose header was checked already, with a synchronous
 * signature check: the signature over `header.payload`, a JSON object payload, and `iat`, `nbf`,
 * `exp` when present (numbers; `nbf`/`exp` against `now` with `leeway`). Throws on any failure.
 */
function verifiedClaims(
  proof: string,
  check: (data: Uint8Array, signature: Uint8Array) => boolean,
  now: number,
  leeway: number,
): Record<string, unknown> {
  const second = proof.lastIndexOf(".");
  const first = proof.indexOf(".");
  // jose's own base64url decoder and a lenient UTF-8 decode, as jwtVerify reads them.
  const data = encoder.encode(proof.slice(0, second));
  const signature = b64u.decode(proof.slice(second + 1));
  let valid: boolean;
  try {
    valid = check(data, signature);
  } catch (cause) {
    throw new CryptoFailureError("the runtime's signature check of a DPoP proof threw", { cause });
  }
  if (!valid) throw new Error("signature");
  const payload: unknown = JSON.parse(decoder.decode(b64u.decode(proof.slice(first + 1, second))));
  if (!payload || typeof payload !== "object" || Array.isArray(payload)) throw new Error("not an object");
  const claims = payload as Record<string, unknown>;
  for (const name of ["iat", "nbf", "exp"]) if (claims[name] !== undefined && typeof claims[name] !== "number") throw new Error(name);
  if (typeof claims.nbf === "number" && claims.nbf > now + leeway) throw new Error("nbf");
  if (typeof claims.exp === "number" && claims.exp <= now - leeway) throw new Error("exp");
  return claims;
}

/**
 * A proof's signature check that did not pass: the caller's `invalid_dpop_proof`, unless the check
 * itself threw (jose keeps WebCrypto's throw as the `cause`), which is ours.
 */
function signatureFailure(config: DpopConfig, error: unknown): Error {
  if (error instanceof CryptoFailureError) return error;
  return webCryptoFailure(error, "a DPoP proof") ?? fail(config, "invalid_dpop_proof", "'DPoP' proof signature or structure is invalid");
}

/** `htu` names one of our origins and the request path, ignoring query and fragment. */
export function htuMatches(htu: string, receivedUrl: string, origins: ReadonlySet<string>): boolean {
  const claimed = normalizeHttpUri(htu);
  const received = normalizeHttpUri(receivedUrl);
  if (!claimed || !received) return false;
  return origins.has(claimed.origin) && claimed.path === received.path;
}

// ---------------------------------------------------------------------------------------------
// Kong's modes.

export interface DpopCheckInput extends Omit<DpopProofInput, "config"> {
  readonly mode: PopMode;
  /** The scheme the token came with (`findBearerToken`). */
  readonly scheme: "Bearer" | "DPoP";
  readonly config: DpopConfig;
}

/**
 * `proof_of_possession_dpop` (Kong's meaning): `off` skips DPoP; `optional` checks a proof for
 * DPoP-bound tokens only; `strict` requires a DPoP-bound token with a valid proof on every
 * request. In both checking modes a bound token under the `Bearer` scheme is `invalid_token`
 * (RFC 9449 §7.2). Returns the proof's key thumbprint when a proof was verified.
 */
export async function checkDpop(input: DpopCheckInput): Promise<VerifiedDpopProof | undefined> {
  if (input.mode === "off") return undefined;
  const bound = boundJkt(input.claims) !== undefined;
  if (input.scheme === "Bearer") {
    if (bound) throw fail(input.config, "invalid_token", "a dpop-bound access token must be sent with the 'DPoP' scheme");
    if (input.mode === "strict") throw fail(input.config, "invalid_token", "a dpop-bound access token and a 'DPoP' proof are required");
    return undefined;
  }
  return verifyDpopProof(input);
}
