/**
 * JWT access token verification against an issuer's keys: allowed algorithms only (never
 * `none`; HMAC only when explicitly enabled and given a secret), `iss` exact, `exp`/`nbf`/`iat`
 * with leeway (`iat` with at least `IAT_FUTURE_SKEW`), optional `aud` and `typ`.
 *
 * Neutral about whose fault a bad token is: it throws `AccessTokenError` with a reason, and the
 * caller decides (a token the IdP just issued us that fails is the IdP's problem, 502; a token a
 * caller presented is the caller's, 401 `invalid_token`). A key fetch that fails, or an issuer's
 * key that cannot be used (malformed, unsupported, an RSA key under 2048 bits), throws `IdpError`
 * (`bad_response`, 502): the IdP's problem is never a caller's 401, nor remembered as the verdict
 * on their token.
 */
import { decodeProtectedHeader, errors, jwtVerify, type JWSHeaderParameters, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { AccessTokenError, type AccessTokenFailure, IdpError, webCryptoFailure } from "../../errors.ts";

/** HMAC algorithms: only with `enable_hs_signatures`, keyed by the client secret. */
const HMAC_ALGORITHMS = ["HS256", "HS384", "HS512"] as const;

/**
 * Seconds an `iat` may lie in the future whatever `leeway` says (the larger of the two applies):
 * an IdP or client whose clock runs a little ahead is normal (RFC 9449 §11.1), and with
 * `leeway = 0` the next token would be refused, a client credentials miss turned into a 502 and a
 * bearer token into a cached 401. Also used for DPoP proofs.
 */
const IAT_FUTURE_SKEW = 5;

/** Longer tokens are refused before any parsing: bounded work per request. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

/** Where the keys come from: an `Issuer` fits (its `issuer` and `getKey`). */
export interface KeySource {
  /** The expected `iss`, compared exactly. */
  /** The issuer identifier(s) `iss` may be. */
  readonly issuer: string | readonly string[];
  readonly getKey: JWTVerifyGetKey;
}

export interface AccessTokenPolicy {
  /** Allowed `alg` values; `none` is never allowed, whatever this says. */
  readonly algorithms: readonly string[];
  /** Clock skew tolerated for `exp`, `nbf` and `iat` (s). */
  readonly leeway: number;
  /** When set, `aud` must contain one of these. */
  readonly audience?: readonly string[];
  /** When set, the `typ` header must equal it (e.g. `at+jwt`, RFC 9068). */
  readonly typ?: string;
  /** Refuse tokens without `exp`. */
  readonly requireExpiry?: boolean;
}

export interface VerifiedAccessToken {
  readonly header: JWSHeaderParameters;
  readonly claims: JWTPayload;
  /** Epoch ms of `exp`, when the token has one. */
  readonly expiresAt: number | undefined;
}

/** A compact JWS (three base64url parts); anything else is an opaque token to us. */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

/**
 * Verifies `token` with the keys of `source` under `policy`. `hmacSecret` is used only for an
 * `HS*` token whose algorithm the policy allows.
 */
export async function verifyAccessToken(
  token: string,
  source: KeySource,
  policy: AccessTokenPolicy,
  hmacSecret?: string,
): Promise<VerifiedAccessToken> {
  if (token.length > MAX_TOKEN_LENGTH) throw new AccessTokenError("malformed", "the token is too long");
  if (!looksLikeJwt(token)) throw new AccessTokenError("malformed", "the token is not a compact JWS");
  let header: JWSHeaderParameters;
  try {
    header = decodeProtectedHeader(token) as JWSHeaderParameters;
  } catch (error) {
    throw new AccessTokenError("malformed", "the token header cannot be decoded", { cause: error });
  }
  const alg = header.alg;
  if (typeof alg !== "string" || alg === "none" || !policy.algorithms.includes(alg)) {
    throw new AccessTokenError("algorithm", `the token algorithm "${String(alg).slice(0, 20)}" is not allowed`);
  }
  const hmac = (HMAC_ALGORITHMS as readonly string[]).includes(alg);
  if (hmac && !hmacSecret) throw new AccessTokenError("algorithm", `the token algorithm "${alg}" needs a client secret`);
  // Whatever the resolver throws, other than "no such key", is about the issuer's keys.
  let keyResolved = false;
  const getKey: JWTVerifyGetKey = async (protectedHeader, jws) => {
    try {
      const found = await source.getKey(protectedHeader, jws);
      keyResolved = true;
      return found;
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys || error instanceof IdpError) throw error;
      throw unusableKey(source, error);
    }
  };
  const key = hmac ? new TextEncoder().encode(hmacSecret) : getKey;
  try {
    const { payload, protectedHeader } = await jwtVerify(token, key as JWTVerifyGetKey, {
      issuer: typeof source.issuer === "string" ? source.issuer : [...source.issuer],
      algorithms: [alg],
      clockTolerance: policy.leeway,
      ...(policy.audience?.length ? { audience: [...policy.audience] } : {}),
      ...(policy.typ ? { typ: policy.typ } : {}),
      ...(policy.requireExpiry ? { requiredClaims: ["exp"] } : {}),
    });
    // jose checks `iat` only against a maximum age; a token issued in the future is refused here.
    if (typeof payload.iat === "number" && payload.iat > Date.now() / 1000 + Math.max(policy.leeway, IAT_FUTURE_SKEW)) {
      throw new AccessTokenError("issued_in_future", 'the token "iat" claim is in the future');
    }
    return { header: protectedHeader, claims: payload, expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 : undefined };
  } catch (error) {
    // Once the issuer's key is found, only the key makes jose's key checks or WebCrypto throw.
    if (keyResolved && (error instanceof TypeError || error instanceof DOMException)) throw unusableKey(source, error);
    throw toAccessTokenError(error);
  }
}

function unusableKey(source: KeySource, error: unknown): IdpError {
  const why = error instanceof Error ? error.message.slice(0, 200) : "unknown";
  return new IdpError("bad_response", `a signing key of ${source.issuer} cannot be used: ${why}`, { cause: error });
}

function toAccessTokenError(error: unknown): unknown {
  if (error instanceof AccessTokenError) return error;
  if (error instanceof errors.JWTExpired) return new AccessTokenError("expired", "the token has expired", { cause: error });
  if (error instanceof errors.JWTClaimValidationFailed) {
    const reason: AccessTokenFailure =
      error.claim === "iss"
        ? "issuer"
        : error.claim === "nbf"
          ? "not_yet_valid"
          : error.claim === "iat"
            ? "issued_in_future"
            : error.claim === "aud"
              ? "audience"
              : error.claim === "typ"
                ? "type"
                : "claims";
    if (error.reason === "missing") return new AccessTokenError(reason, `the token has no "${error.claim}" claim`, { cause: error });
    return new AccessTokenError(reason, `the token "${error.claim}" claim is not valid (${error.reason})`, { cause: error });
  }
  const ours = webCryptoFailure(error, "an access token");
  if (ours) return ours;
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return new AccessTokenError("signature", "the token signature does not verify", { cause: error });
  if (error instanceof errors.JWKSNoMatchingKey)
    return new AccessTokenError("unknown_key", "no key of the issuer matches the token", { cause: error });
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported)
    return new AccessTokenError("algorithm", "the token algorithm is not allowed", { cause: error });
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid || error instanceof errors.JWKSMultipleMatchingKeys) {
    return new AccessTokenError("malformed", "the token is not a valid JWT", { cause: error });
  }
  return error; // IdpError (keys unavailable or unusable) and the unexpected pass through
}
