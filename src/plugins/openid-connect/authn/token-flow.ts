/**
 * What openid-connect's cached token flows (client_credentials, password, introspection) share:
 * a token cache built from the plugin's `cache_*` settings, backed by the fleet's store
 * (`[cluster]`) and metered under its label, and the recording of each lookup's outcome; for the
 * two that get a token for the caller's credentials (client_credentials, password), the token
 * endpoint call and the verification of what it issued. Each authenticator keeps what differs:
 * how the caller's credentials are read, what decides the cache key, and which grant is asked for.
 */
import { AuthError, IdpError, type Challenge, AccessTokenError } from "../../../errors.ts";
import type { RequestContext } from "../../../gateway/context.ts";
import { createKeyedHash, HeaderMemo } from "../../../oidc/client/cache-key.ts";
import type { IssuerMetadata } from "../../../oidc/client/issuer.ts";
import { TokenCache, type CacheResult, type Fresh, type TokenCachePolicy, type ValueCodec } from "../../../oidc/client/token-cache.ts";
import { StringSlab } from "../../../lib/string-slab.ts";
import { CACHE_EVENT, meterCacheSize } from "../../../oidc/client/token-cache-metrics.ts";
import type { ClientCredentials, TokenResponse } from "../../../oidc/client/token-endpoint.ts";
import { looksLikeJwt, verifyAccessToken, type AccessTokenPolicy } from "../../../oidc/resource/verify-access-token.ts";
import type { PluginContext } from "../../types.ts";
import { TOKEN_CHALLENGES, type Authenticator, type AuthenticatorDeps } from "./authenticator.ts";
import { hideCredentials, parseBasic, readClientCredentials, type CredentialNames, type FoundCredentials } from "./credentials.ts";
import { parseRequirement } from "../authz.ts";
import { allowedAlgorithms, type OpenIdConnectConfig, type ParamType } from "../schema.ts";
import type { Grant } from "../mutate.ts";
import { timedIdpCall } from "../../../oidc/client/timed-call.ts";

/**
 * Format of the fleet's entries, part of their Redis keys: v2 holds the token and claims only
 * (v1 held one route's rendered headers), so nodes of two versions never read each other's.
 */
const SHARED_FORMAT = "v2";

export interface FlowCacheOptions<T = Grant> {
  /** The metrics label, and the name of the fleet's cache (with `SHARED_FORMAT`). */
  readonly label: "client_credentials" | "password" | "introspection";
  /** The `[cluster] items` entry that decides whether the fleet shares it. */
  readonly item: "tokens" | "introspection";
  /** Whether a still-valid token may stand in for a failing IdP (`cache_ttl_resurrect`). */
  readonly resurrect: boolean;
  /** A background refresh failed at the IdP (the cached token is served meanwhile). */
  readonly onRefreshError: (error: IdpError) => void;
  /** What a local entry keeps of a value (`TokenCacheOptions.keep`); the fleet's store gets it whole. */
  readonly keep?: ((value: T) => T) | undefined;
  /** How a local entry stores it (`TokenCacheOptions.codec`). */
  readonly codec?: ValueCodec<T> | undefined;
}

export interface FlowCache<T> {
  readonly cache: TokenCache<T>;
  /**
   * Records a lookup's outcome (the `token_cache` log field, the metric) and unwraps it: a
   * remembered rejection is thrown again. Callers set `token_cache = "miss"` before the lookup,
   * so a miss that ends in a rejection (thrown by `cache.get`) is logged as a miss.
   */
  settle(c: RequestContext, result: CacheResult<T>): T;
  /** Records a plain hit (`TokenCache.hit`) as `settle` records one. */
  hit(c: RequestContext, value: T): T;
  /** Leaves the metrics and empties the cache. */
  close(): void;
}

/** Kong's `cache_ttl*` and `cache_tokens_max` as a token cache policy (resurrection only where a method allows it). */
export function cachePolicy(config: Readonly<OpenIdConnectConfig>, resurrect = false): TokenCachePolicy {
  return {
    ttl: config.cache_ttl,
    ttlMin: config.cache_ttl_min,
    ttlMax: config.cache_ttl_max,
    ttlNeg: config.cache_ttl_neg,
    ...(resurrect ? { ttlResurrect: config.cache_ttl_resurrect } : {}),
    maxEntries: config.cache_tokens_max,
  };
}

/** The token cache of one authenticator: what is cached is the token and its claims, never what a plugin instance renders from them. */
export async function createFlowCache<T extends Grant>(
  config: Readonly<OpenIdConnectConfig>,
  ctx: PluginContext,
  options: FlowCacheOptions<T>,
): Promise<FlowCache<T>> {
  const metrics = ctx.metrics;
  const label = options.label;
  const cache = new TokenCache<T>(cachePolicy(config, options.resurrect), {
    onRefreshError: (error) => {
      if (error instanceof IdpError) options.onRefreshError(error);
    },
    onEvict: () => metrics?.tokenCache(label, "eviction"),
    shared: await ctx.cluster?.tokenLayer<T>(options.item, `${label}:${SHARED_FORMAT}`, config.cache_tokens_salt),
    keep: options.keep,
    codec: options.codec,
  });
  return {
    cache,
    settle(c, result) {
      c.var.logFields.token_cache = result.state;
      metrics?.tokenCache(label, CACHE_EVENT[result.state]);
      if (result.state === "negative") throw result.error;
      return result.value;
    },
    hit(c, value) {
      c.var.logFields.token_cache = "hit";
      metrics?.tokenCache(label, "hit");
      return value;
    },
    close: meterCacheSize(ctx, label, cache),
  };
}

/** The keys of the plugin's config that decide which claims something reads. */
export type ClaimReaders = Pick<
  OpenIdConnectConfig,
  "upstream_headers_claims" | "audience_required" | "audience_claim" | "scopes_required" | "scopes_claim"
> &
  Partial<
    Pick<
      OpenIdConnectConfig,
      | "groups_required"
      | "groups_claim"
      | "roles_required"
      | "roles_claim"
      | "claims_forbidden"
      | "authenticated_groups_claim"
      | "consumer_claim"
      | "credential_claim"
    >
  >;

/** Claims the access log names the caller by (`client_id`, `sub`), kept when the access log is on. */
const IDENTITY_CLAIMS = ["client_id", "azp", "sub"] as const;

/**
 * What a cached grant of this plugin instance keeps of the token's claims: the ones its upstream
 * headers (`upstream_headers_claims`), requirements (`audience_required`, `scopes_required`,
 * `groups_required`, `roles_required` by their `*_claim`, `claims_forbidden`), authenticated
 * groups, consumer mapping, credential and, with `identity`, the access log read; none when nothing reads them. A parsed JWT
 * payload costs about 1 KiB in the heap, a third of an entry; a fleet's entry (`[cluster]`)
 * keeps all claims for nodes with other settings.
 */
export function claimsKept(config: ClaimReaders, options: { readonly identity?: boolean } = {}): (grant: Grant) => Grant {
  // A dotted claim (`realm_access.roles`) may be nested under its first part.
  const names = new Set(config.upstream_headers_claims.flatMap((claim) => [claim, claim.split(".")[0]!]));
  // A requirement reads the top-level claim its path starts with.
  const requires = (required: readonly string[], path: readonly string[]) => {
    if (parseRequirement(required).length > 0 && path[0] !== undefined) names.add(path[0]);
  };
  requires(config.audience_required, config.audience_claim);
  requires(config.scopes_required, config.scopes_claim);
  requires(config.groups_required ?? [], config.groups_claim ?? []);
  requires(config.roles_required ?? [], config.roles_claim ?? []);
  for (const name of config.claims_forbidden ?? []) names.add(name);
  for (const path of [config.authenticated_groups_claim, config.consumer_claim, config.credential_claim])
    if (path?.[0] !== undefined) names.add(path[0]);
  if (options.identity) for (const name of IDENTITY_CLAIMS) names.add(name);
  const kept = [...names];
  return (grant) => {
    const claims = grant.claims;
    if (!claims) return grant;
    if (kept.length === 0) return { token: grant.token, claims: undefined };
    const some: Record<string, unknown> = {};
    for (const name of kept) if (Object.hasOwn(claims, name)) some[name] = claims[name];
    return { token: grant.token, claims: some };
  };
}

/** JSON in ASCII only (what the slab stores): other characters as `\uXXXX` escapes, which JSON.parse reads back. */
const asciiJson = (value: unknown) => JSON.stringify(value).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);

/**
 * Grants stored with their token as bytes in a slab of the cache's own (src/lib/string-slab.ts):
 * a JWT as its decoded parts, its payload as the difference from the issuer's first one, instead
 * of a JS string of ~2 KiB of RSS; the kept claims (`sub` for `credential_claim` by default) as
 * JSON beside it, so a cached grant is one number and no object. A grant served again after
 * HOT_VALUES others gets new claims objects, so what is remembered per claims object
 * (claim headers, consumer, identity) is remembered for the recently served only.
 */
export function grantCodec(): ValueCodec<Grant> {
  const slab = new StringSlab();
  type Packed = number | { readonly grant: Grant };
  return {
    pack(grant): Packed {
      let claims: string | undefined;
      try {
        claims = grant.claims === undefined ? undefined : asciiJson(grant.claims);
      } catch {
        return { grant }; // not JSON (never from a token or the fleet's store)
      }
      const ref = slab.put(grant.token, claims);
      return ref < 0 ? { grant } : ref;
    },
    unpack(packed): Grant {
      const p = packed as Packed;
      if (typeof p !== "number") return p.grant;
      const claims = slab.tail(p);
      return { token: slab.get(p), claims: claims === undefined ? undefined : (JSON.parse(claims) as Grant["claims"]) };
    },
    free(packed) {
      if (typeof packed === "number") slab.free(packed);
    },
  };
}

/** A Basic header seen before: the cache key of its credentials, and the token endpoint it was computed for. */
interface SeenBasic {
  readonly key: string;
  readonly tokenEndpoint: string;
}

/** Distinct Basic headers remembered (a cache key each, never the credentials). */
const MAX_SEEN_HEADERS = 4096;

/** What sets a method that gets a token for the caller's credentials apart from the other. */
export interface GrantMethod {
  readonly method: "client_credentials" | "password";
  /** The challenges of a request without credentials, and of a refusal of them. */
  readonly challenges: readonly Challenge[];
  /** Where the caller's credentials are read (`*_param_type`), and under which names. */
  readonly paramTypes: readonly ParamType[];
  readonly names: CredentialNames;
  /** Everything but the caller's credentials that decides the token (serialised once, unambiguously). */
  readonly requestParts: string;
  /** Asks the token endpoint for the caller's token (the grant; tokens not yet verified). */
  request(found: FoundCredentials, meta: IssuerMetadata): Promise<TokenResponse>;
  /** The secret `HS*` access tokens are verified with (`enable_hs_signatures`), if any. */
  hsSecret(found: FoundCredentials): string | undefined;
  /** The IdP refused the caller's credentials: logs it. */
  onRefused(error: AuthError): void;
  /** A background refresh failed at the IdP: logs it. */
  onRefreshError(error: IdpError): void;
}

/**
 * An authenticator that exchanges the caller's credentials at the token endpoint, verifies the
 * access token, and sends it upstream. The exchange is cached under a keyed hash of the
 * credentials and everything else that decides the token, so the repeat request costs one HMAC
 * and one map lookup; with `cache_tokens = false` every request asks the IdP.
 */
export async function grantAuthenticator({ config, issuer, ctx }: AuthenticatorDeps, grant: GrantMethod): Promise<Authenticator> {
  const { method, challenges, paramTypes, names, requestParts } = grant;
  const metrics = ctx.metrics;
  const policy: AccessTokenPolicy = { algorithms: allowedAlgorithms(config), leeway: config.leeway };
  const hash = await createKeyedHash(config.cache_tokens_salt, ctx.runtime.hmacSha256);
  const tokens = await createFlowCache<Grant>(config, ctx, {
    label: method,
    item: "tokens",
    resurrect: true,
    onRefreshError: grant.onRefreshError,
    keep: claimsKept(config, { identity: ctx.server.access_log }),
    codec: grantCodec(),
  });
  const readOptions = { hide: config.hide_credentials, challenges, names };
  // A caller sends the same Basic header on every request: the cache key of its credentials is
  // remembered under one HMAC of the header, so a hit skips decoding and the HMAC over all parts.
  const seen =
    config.cache_tokens && paramTypes.includes("header") && ctx.runtime.hmacSha256
      ? new HeaderMemo<SeenBasic>(ctx.runtime.hmacSha256, MAX_SEEN_HEADERS)
      : undefined;

  /** The token endpoint call, timed and counted, and the verification of what it issued. */
  const fetchToken = async (found: FoundCredentials, meta: IssuerMetadata): Promise<Fresh<Grant>> => {
    let response;
    try {
      response = await timedIdpCall(metrics, "token", () => grant.request(found, meta));
    } catch (error) {
      if (error instanceof AuthError) {
        grant.onRefused(error);
        throw error.withChallenges(challenges);
      }
      throw error;
    }
    const token = response.access_token;
    let expiresAt = typeof response.expires_in === "number" ? Date.now() + response.expires_in * 1000 : undefined;
    let claims: Readonly<Record<string, unknown>> | undefined;
    if (looksLikeJwt(token)) {
      try {
        const verified = await verifyAccessToken(token, issuer, policy, grant.hsSecret(found));
        claims = verified.claims;
        if (verified.expiresAt !== undefined) expiresAt = Math.min(expiresAt ?? Infinity, verified.expiresAt);
      } catch (error) {
        if (!(error instanceof AccessTokenError)) throw error;
        // The IdP issued it to us directly: a token that fails is the IdP's (or our config's) fault.
        throw new IdpError("bad_response", `the access token issued by ${issuer.issuer} failed verification: ${error.message} (${error.reason})`);
      }
    }
    return { value: { token, claims }, expiresAt };
  };

  return {
    method,
    challenges,
    async authenticate(c) {
      if (paramTypes.length === 0) return undefined;
      const authorization = seen ? c.req.raw.headers.get("authorization") : null;
      // Only a Basic header can be remembered: another scheme (a bearer token for the next
      // authenticator) is not hashed for nothing.
      const seenKey = authorization !== null && authorization.slice(0, 6).toLowerCase() === "basic " ? seen!.key(authorization) : undefined;
      if (seenKey !== undefined) {
        const known = seen!.get(seenKey);
        const meta = issuer.peek();
        // The header is read first whatever else the request carries (readClientCredentials), so
        // its credentials are the caller's; a rediscovered token endpoint makes another key.
        if (known && meta && known.tokenEndpoint === (meta.discovery.token_endpoint ?? "")) {
          // A plain hit without a promise; anything else (miss, refresh, negative) through get.
          const hit = tokens.cache.hit(known.key);
          c.var.logFields.token_cache = "miss";
          const value =
            hit !== undefined
              ? tokens.hit(c, hit)
              : tokens.settle(
                  c,
                  await tokens.cache.get(known.key, () =>
                    fetchToken({ ...(parseBasic(authorization!) as ClientCredentials), source: "header" }, meta),
                  ),
                );
          if (config.hide_credentials) c.var.upstreamHeaders.delete("authorization");
          return { method, grant: value, challenges: TOKEN_CHALLENGES };
        }
      }
      const found = await readClientCredentials(c, paramTypes, readOptions);
      if (!found) return undefined;
      const meta = issuer.peek() ?? (await issuer.metadata());
      let value: Grant;
      if (config.cache_tokens) {
        const tokenEndpoint = meta.discovery.token_endpoint ?? "";
        const key = await hash([issuer.issuer, tokenEndpoint, found.clientId, found.clientSecret, requestParts]);
        if (seenKey !== undefined && found.source === "header") seen!.set(seenKey, { key, tokenEndpoint });
        c.var.logFields.token_cache = "miss"; // replaced by settle unless the miss ends in a rejection
        value = tokens.settle(c, await tokens.cache.get(key, () => fetchToken(found, meta)));
      } else {
        value = (await fetchToken(found, meta)).value;
        c.var.logFields.token_cache = "off";
      }
      if (config.hide_credentials) hideCredentials(c, found, names);
      return { method, grant: value, challenges: TOKEN_CHALLENGES };
    },
    close: tokens.close,
  };
}
