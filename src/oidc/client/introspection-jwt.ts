/**
 * RFC 9701 introspection answers (Kong's `introspection_accept =
 * "application/token-introspection+jwt"`): the IdP signs its answer, and the gateway takes the
 * `token_introspection` claim as the result only after checking the signature with the issuer's
 * keys, `typ` = `token-introspection+jwt`, `iss` = the issuer, `aud` = the gateway's client id
 * and `iat` (§5). An answer that does not pass proves nothing about the caller's token: it is the
 * IdP's failure (`IdpError` `bad_response`, a logged 502), never a 401.
 */
import { errors as joseErrors, jwtVerify, type JWTVerifyGetKey } from "jose";
import { IdpError, webCryptoFailure } from "../../errors.ts";
import { ASYMMETRIC_ALGORITHMS } from "../../lib/jwa.ts";

export const INTROSPECTION_JWT = "application/token-introspection+jwt";

export interface IntrospectionJwtPolicy {
  /** The issuer identifier `iss` must be. */
  readonly issuer: string;
  /** The IdP's keys (rediscovered for an unknown `kid`, as for access tokens). */
  readonly getKey: JWTVerifyGetKey;
  /** The gateway's `client_id`: the answer's `aud`. */
  readonly clientId: string;
  /** Clock skew tolerated for `iat`/`exp`/`nbf` of the answer (s). */
  readonly leeway: number;
}

/** Why a JWT answer was refused, without its content (it carries claims of the caller's token). */
function reason(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return "it has expired";
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `its "${error.claim}" claim is wrong (${error.reason})`;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return "its signature does not verify";
  if (error instanceof joseErrors.JWKSNoMatchingKey) return "no key of the issuer matches it";
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return "it is signed with an algorithm that is not allowed";
  if (error instanceof joseErrors.JOSEError) return `it is not a valid JWT (${error.code})`;
  return "it cannot be verified";
}

/** The verified `token_introspection` of `jwt`; throws `IdpError` `bad_response` naming `endpoint`. */
export async function verifyIntrospectionJwt(jwt: string, policy: IntrospectionJwtPolicy, endpoint: string): Promise<Record<string, unknown>> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(jwt, policy.getKey, {
      issuer: policy.issuer,
      audience: policy.clientId,
      typ: "token-introspection+jwt",
      requiredClaims: ["iat"],
      algorithms: [...ASYMMETRIC_ALGORITHMS],
      clockTolerance: policy.leeway,
    }));
  } catch (error) {
    if (error instanceof IdpError) throw error; // the issuer's keys could not be fetched
    // A throw inside WebCrypto is ours, not the IdP's.
    throw (
      webCryptoFailure(error, "an introspection answer") ??
      new IdpError("bad_response", `introspection endpoint ${endpoint} answered a JWT the gateway cannot trust: ${reason(error)}`)
    );
  }
  const result = payload.token_introspection;
  if (typeof result !== "object" || result === null || Array.isArray(result) || typeof (result as { active?: unknown }).active !== "boolean") {
    throw new IdpError("bad_response", `introspection endpoint ${endpoint} answered a JWT without a "token_introspection" object with "active"`);
  }
  return result as Record<string, unknown>;
}
