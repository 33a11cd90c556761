/**
 * `auth_methods = ["bearer"]`: the caller presents a JWT access token of the issuer
 * (`Authorization: Bearer`, or `DPoP` with a proof, or `access_token` in the query or body as
 * `bearer_token_param_type` allows). The gateway verifies it with the issuer's keys (allowed
 * asymmetric algorithms only, `iss` exact, `exp` required, `exp`/`nbf`/`iat` with `leeway`), then
 * the proof of possession (DPoP, mTLS).
 * Kong's `audience_required` / `scopes_required` are checked by the plugin, for every method.
 *
 * The verdict on a token (its claims and upstream headers, or its rejection) is cached under a
 * keyed hash of the token, never past its `exp`: a hot token costs one HMAC and one map lookup.
 * Proofs of possession are request-bound and checked on every request.
 *
 * A request whose `Authorization` is another scheme (`Basic`) is not ours ("not mine"), so
 * `client_credentials` can take it; an opaque (non-JWT) token is left to `introspection` when
 * that method is enabled too.
 */
import { AuthError, AccessTokenError } from "../../../errors.ts";
import { createKeyedHash, HeaderMemo } from "../../../oidc/client/cache-key.ts";
import { accessTokenHash } from "../../../oidc/resource/dpop.ts";
import { TokenCache, type Fresh } from "../../../oidc/client/token-cache.ts";
import { CACHE_EVENT, meterCacheSize } from "../../../oidc/client/token-cache-metrics.ts";
import {
  looksLikeJwt,
  MAX_TOKEN_LENGTH,
  verifyAccessToken,
  type AccessTokenPolicy,
  type VerifiedAccessToken,
} from "../../../oidc/resource/verify-access-token.ts";
import type { Authenticator, AuthenticatorFactory } from "./authenticator.ts";
import { hideBearerToken, presentedTokenOf } from "./bearer-token.ts";
import type { HeaderToken } from "../../../oidc/resource/bearer-request.ts";
import { createProofOfPossession } from "./proof-of-possession.ts";
import { allowedAlgorithms } from "../schema.ts";
import type { Grant } from "../mutate.ts";
import { cachePolicy } from "./token-flow.ts";

/** What is cached per token: its claims, ready for the hot path (headers are the plugin's to render). */
interface VerifiedToken extends Grant {
  readonly claims: Readonly<Record<string, unknown>>;
  /** `ath` of the token (RFC 9449 §4.2), so a DPoP check does not hash it again. */
  readonly ath: string;
}

/** A well-formed token header (`Authorization`, or `bearer_token_header_name`) seen before: its token, and the token's cache key once computed. */
interface SeenHeader extends HeaderToken {
  cacheKey: string | undefined;
}

/** Distinct token header values remembered (a value holds a token the cache holds too). */
const MAX_SEEN_HEADERS = 2048;

/** RFC 9068 §2.2: claims every JWT access token of the profile carries (besides `iss`, `aud`). */
const PROFILE_CLAIMS = ["exp", "iat", "sub", "client_id", "jti"] as const;

export const bearerAuthenticator: AuthenticatorFactory = async ({ config, keys, ctx }): Promise<Authenticator> => {
  const pop = await createProofOfPossession(config, ctx);
  // Bearer tokens are verified with the issuer's public keys only: the gateway holds no client
  // secret to check an HMAC with, so `HS*` tokens are refused whatever `enable_hs_signatures` says.
  // `exp` always: a bearer token without one would be accepted (and cached) forever; RFC 9068
  // §2.2 makes it mandatory for JWT access tokens.
  const policy: AccessTokenPolicy = {
    algorithms: allowedAlgorithms({ enable_hs_signatures: false }),
    leeway: config.leeway,
    requireExpiry: true,
    ...(config.bearer_require_at_jwt ? { typ: "at+jwt" } : {}),
  };
  const introspects = (config.auth_methods as readonly string[]).includes("introspection");
  const hash = await createKeyedHash(config.cache_tokens_salt, ctx.runtime.hmacSha256);
  const tokenHeader = config.bearer_token_header_name?.toLowerCase() ?? "authorization";
  // A caller sends the same header on every request: its parse and its token's HMAC are
  // remembered under one HMAC of the header (with the runtime's synchronous HMAC; see HeaderMemo).
  const seen =
    config.bearer_token_param_type.includes("header") && ctx.runtime.hmacSha256
      ? new HeaderMemo<SeenHeader>(ctx.runtime.hmacSha256, MAX_SEEN_HEADERS)
      : undefined;
  const metrics = ctx.metrics;
  const cache = new TokenCache<VerifiedToken>(cachePolicy(config), { onEvict: () => metrics?.tokenCache("bearer", "eviction") });
  // `gateway_token_cache_entries{cache="bearer"}` and `gateway_token_cache_events_total{cache="bearer"}`, as the other token caches.
  const closeCache = meterCacheSize(ctx, "bearer", cache);

  const invalidToken = (description: string) => new AuthError({ error: "invalid_token", description });

  /** Verifies a presented JWT and applies the token-only requirements; throws scheme-neutral `AuthError`s. */
  const verify = async (token: string): Promise<Fresh<VerifiedToken>> => {
    let verified: VerifiedAccessToken;
    try {
      verified = await verifyAccessToken(token, keys, policy);
    } catch (error) {
      if (error instanceof AccessTokenError) throw invalidToken(error.message);
      throw error; // IdpError: the keys are unavailable, our problem (5xx)
    }
    const claims = verified.claims as Readonly<Record<string, unknown>>;
    if (config.bearer_require_at_jwt) {
      const missing = PROFILE_CLAIMS.find((name) => claims[name] === undefined);
      if (missing) throw invalidToken(`the token has no "${missing}" claim (RFC 9068 §2.2)`);
    }
    return {
      value: { token, claims, ath: await accessTokenHash(token) },
      expiresAt: verified.expiresAt,
    };
  };

  return {
    method: "bearer",
    challenges: pop.challenges,
    async authenticate(c) {
      const authorization = seen ? c.req.raw.headers.get(tokenHeader) : null;
      const seenKey = authorization !== null ? seen!.key(authorization) : undefined;
      const header = seenKey !== undefined ? seen!.get(seenKey) : undefined;
      const presented = await presentedTokenOf(c, config, pop, header);
      if (!presented) return undefined;
      // Refused before it is hashed for the cache: bounded work for any header size.
      if (presented.token.length > MAX_TOKEN_LENGTH)
        throw invalidToken("the access token is too long").withChallenges(pop.challengesFor(presented.scheme));
      if (!looksLikeJwt(presented.token)) {
        if (introspects) return undefined; // an opaque token: introspection's to judge
        throw invalidToken("the access token is not a JWT issued by the configured issuer").withChallenges(pop.challengesFor(presented.scheme));
      }
      // `introspect_jwt_tokens`: JWTs too are the introspection endpoint's to judge (it sees revocations).
      if (introspects && config.introspect_jwt_tokens) return undefined;
      let remembered = header;
      if (!remembered && seenKey !== undefined && presented.source === "header") {
        remembered = { token: presented.token, scheme: presented.scheme, cacheKey: undefined };
        seen!.set(seenKey, remembered);
      }
      let value: VerifiedToken;
      try {
        if (config.cache_tokens) {
          const token = presented.token;
          let key = remembered?.cacheKey;
          if (key === undefined) {
            key = await hash([token]);
            if (remembered) remembered.cacheKey = key;
          }
          const result = await cache.get(key, () => verify(token));
          c.var.logFields.token_cache = result.state;
          metrics?.tokenCache("bearer", CACHE_EVENT[result.state]);
          if (result.state === "negative") throw result.error;
          value = result.value;
        } else {
          c.var.logFields.token_cache = "off";
          value = (await verify(presented.token)).value;
        }
      } catch (error) {
        if (error instanceof AuthError) throw error.withChallenges(pop.challengesFor(presented.scheme));
        throw error;
      }
      const proving = pop.check(c, presented, value.claims, value.ath);
      if (proving) await proving;
      // As Kong: the upstream gets the token as a plain bearer token, never the caller's proof.
      c.var.upstreamHeaders.delete("dpop");
      if (config.hide_credentials) await hideBearerToken(c, presented, config);
      return { method: "bearer", grant: value, challenges: pop.challengesFor(presented.scheme, value.claims) };
    },
    close: closeCache,
  };
};
