/**
 * What openid-connect's cached token flows (client_credentials, password, introspection) share:
 * a token cache built from the plugin's `cache_*` settings, backed by the fleet's store
 * (`[cluster]`) and metered under its label, and the recording of each lookup's outcome; for the
 * two that get a token for the caller's credentials (client_credentials, password), the token
 * endpoint call and the verification of what it issued. Each authenticator keeps what differs:
 * how the caller's credentials are read, what decides the cache key, and which grant is asked for.
 */
import type { Context } from "hono";
import { AuthError, IdpError, type Challenge } from "../../errors.ts";
import type { GatewayEnv } from "../../gateway/context.ts";
import type { Metrics } from "../../metrics.ts";
import { TokenCache, type CacheResult, type Fresh } from "../../oidc/token-cache.ts";
import { CACHE_EVENT, meterCacheSize } from "../../oidc/token-cache-metrics.ts";
import type { TokenResponse } from "../../oidc/token-endpoint.ts";
import { AccessTokenError, looksLikeJwt, verifyAccessToken, type AccessTokenPolicy, type KeySource } from "../../oidc/verify-access-token.ts";
import type { PluginContext } from "../types.ts";
import type { OpenIdConnectConfig } from "./schema.ts";
import type { Grant } from "./upstream-headers.ts";

/**
 * Format of the fleet's entries, part of their Redis keys: v2 holds the token and claims only
 * (v1 held one route's rendered headers), so nodes of two versions never read each other's.
 */
const SHARED_FORMAT = "v2";

export interface FlowCacheOptions {
  /** The metrics label, and the name of the fleet's cache (with `SHARED_FORMAT`). */
  readonly label: "client_credentials" | "password" | "introspection";
  /** The `[cluster] items` entry that decides whether the fleet shares it. */
  readonly item: "tokens" | "introspection";
  /** Whether a still-valid token may stand in for a failing IdP (`cache_ttl_resurrect`). */
  readonly resurrect: boolean;
  /** A background refresh failed at the IdP (the cached token is served meanwhile). */
  readonly onRefreshError: (error: IdpError) => void;
}

export interface FlowCache<T> {
  readonly cache: TokenCache<T>;
  /**
   * Records a lookup's outcome (the `token_cache` log field, the metric) and unwraps it: a
   * remembered rejection is thrown again. Callers set `token_cache = "miss"` before the lookup,
   * so a miss that ends in a rejection (thrown by `cache.get`) is logged as a miss.
   */
  settle(c: Context<GatewayEnv>, result: CacheResult<T>): T;
  /** Leaves the metrics and empties the cache. */
  close(): void;
}

/** The token cache of one authenticator: what is cached is the token and its claims, never what a plugin instance renders from them. */
export async function createFlowCache<T extends Grant>(config: Readonly<OpenIdConnectConfig>, ctx: PluginContext, options: FlowCacheOptions): Promise<FlowCache<T>> {
  const metrics = ctx.metrics;
  const label = options.label;
  const cache = new TokenCache<T>(
    {
      ttl: config.cache_ttl,
      ttlMin: config.cache_ttl_min,
      ttlMax: config.cache_ttl_max,
      ttlNeg: config.cache_ttl_neg,
      ...(options.resurrect ? { ttlResurrect: config.cache_ttl_resurrect } : {}),
      maxEntries: config.cache_tokens_max,
    },
    {
      onRefreshError: (error) => {
        if (error instanceof IdpError) options.onRefreshError(error);
      },
      onEvict: () => metrics?.tokenCache(label, "eviction"),
      shared: await ctx.cluster?.tokenLayer<T>(options.item, `${label}:${SHARED_FORMAT}`, config.cache_tokens_salt),
    },
  );
  return {
    cache,
    settle(c, result) {
      c.var.logFields.token_cache = result.state;
      metrics?.tokenCache(label, CACHE_EVENT[result.state]);
      if (result.state === "negative") throw result.error;
      return result.value;
    },
    close: meterCacheSize(ctx, label, cache),
  };
}

/** What `fetchGrant` needs besides the grant: built once per authenticator. */
export interface GrantDeps {
  readonly issuer: KeySource;
  readonly policy: AccessTokenPolicy;
  readonly metrics: Metrics | undefined;
  /** The challenges of the caller's refusal. */
  readonly challenges: readonly Challenge[];
  /** The IdP refused the caller's credentials: logs it (each method says what it may). */
  readonly onRefused: (error: AuthError) => void;
}

/**
 * The token `request` gets from the token endpoint for the caller's credentials, timed and
 * counted as an IdP call, and its access token verified when it is a JWT (`hsSecret`: the secret
 * `HS*` tokens are checked with, when `enable_hs_signatures` is on). The IdP refusing the
 * credentials is the caller's `AuthError`, with `challenges`; a token the IdP issued that fails
 * verification is the IdP's (or our config's) fault, an `IdpError`.
 */
export async function fetchGrant(request: () => Promise<TokenResponse>, hsSecret: string | undefined, deps: GrantDeps): Promise<Fresh<Grant>> {
  const { issuer, metrics } = deps;
  const started = performance.now();
  let response;
  try {
    response = await request();
    metrics?.idp("token", "ok", (performance.now() - started) / 1000);
  } catch (error) {
    metrics?.idp("token", error instanceof AuthError ? "refused" : error instanceof IdpError ? error.failure : "error", (performance.now() - started) / 1000);
    if (error instanceof AuthError) {
      deps.onRefused(error);
      throw error.withChallenges(deps.challenges);
    }
    throw error;
  }
  const token = response.access_token;
  let expiresAt = typeof response.expires_in === "number" ? Date.now() + response.expires_in * 1000 : undefined;
  let claims: Readonly<Record<string, unknown>> | undefined;
  if (looksLikeJwt(token)) {
    try {
      const verified = await verifyAccessToken(token, issuer, deps.policy, hsSecret);
      claims = verified.claims;
      if (verified.expiresAt !== undefined) expiresAt = Math.min(expiresAt ?? Infinity, verified.expiresAt);
    } catch (error) {
      if (!(error instanceof AccessTokenError)) throw error;
      // The IdP issued it to us directly: a token that fails is the IdP's (or our config's) fault.
      throw new IdpError("bad_response", `the access token issued by ${issuer.issuer} failed verification: ${error.message} (${error.reason})`);
    }
  }
  return { value: { token, claims }, expiresAt };
}
