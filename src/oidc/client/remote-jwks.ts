/**
 * A JWKS at a URL that is not an issuer's (Kong's `extra_jwks_uris`), fetched through the IdP
 * client (trust store, proxies, timeout): jose's remote key set, cached, refetched for an unknown
 * `kid` at most once per cooldown.
 */
import { createRemoteJWKSet, customFetch, type JWTVerifyGetKey } from "jose";
import type { FetchLike } from "../../runtime/types.ts";

export function remoteJwks(url: string, fetch: FetchLike, options: { readonly timeout: number; readonly cooldownSeconds: number }): JWTVerifyGetKey {
  return createRemoteJWKSet(new URL(url), {
    timeoutDuration: options.timeout,
    cooldownDuration: options.cooldownSeconds * 1000,
    [customFetch]: (input, init) => fetch(input, init),
  }) as unknown as JWTVerifyGetKey;
}
