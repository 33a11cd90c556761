/**
 * Where a bearer token's keys come from when more than one issuer is allowed (Kong's
 * `issuers_allowed`, `extra_jwks_uris`): the token's `iss` picks its issuer, whose keys verify
 * it; keys from extra JWKS URLs (not an issuer's) are tried when the issuer's do not match.
 * The `iss` read here only chooses keys: jose checks it again against the allowed list.
 */
import { base64url, errors as joseErrors, type FlattenedJWSInput, type JWTVerifyGetKey } from "jose";
import type { KeySource } from "./verify-access-token.ts";

/** The unverified `iss` of a compact JWS's payload, or undefined. */
function unverifiedIssuer(token: FlattenedJWSInput): string | undefined {
  try {
    const payload = typeof token.payload === "string" ? base64url.decode(token.payload) : token.payload;
    const json = JSON.parse(new TextDecoder().decode(payload));
    return typeof json?.iss === "string" ? json.iss : undefined;
  } catch {
    return undefined;
  }
}

export function multiIssuerKeySource(issuers: readonly KeySource[], extraKeys: readonly JWTVerifyGetKey[]): KeySource {
  const byIssuer = new Map<string, KeySource>();
  for (const source of issuers) for (const iss of typeof source.issuer === "string" ? [source.issuer] : source.issuer) byIssuer.set(iss, source);
  const tryExtras = async (
    header: Parameters<JWTVerifyGetKey>[0],
    token: FlattenedJWSInput,
    first: unknown,
  ): Promise<Awaited<ReturnType<JWTVerifyGetKey>>> => {
    for (const getKey of extraKeys) {
      try {
        return await getKey(header, token);
      } catch (error) {
        if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw error;
      }
    }
    throw first;
  };
  return {
    issuer: [...byIssuer.keys()],
    async getKey(header, token) {
      const source = byIssuer.get(unverifiedIssuer(token) ?? "");
      if (!source) return tryExtras(header, token, new joseErrors.JWKSNoMatchingKey());
      try {
        return await source.getKey(header, token);
      } catch (error) {
        if (!(error instanceof joseErrors.JWKSNoMatchingKey) || !extraKeys.length) throw error;
        return tryExtras(header, token, error);
      }
    },
  };
}
