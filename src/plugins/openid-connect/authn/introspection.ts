/**
 * `auth_methods = ["introspection"]`: the caller presents an access token (as for `bearer`); the
 * gateway asks the IdP's introspection endpoint about it (RFC 7662), authenticating as its own
 * client, and lets the request through only when the answer is `active: true` (and `exp`, `nbf`
 * and `iss`, when present, agree). `active: false` is 401 `invalid_token`, unless
 * `introspection_check_active = false` (Kong's switch) accepts it.
 *
 * Opaque tokens are always introspected; JWTs only with `introspect_jwt_tokens`, or when `bearer`
 * (which verifies them locally) is off. Results are cached under a keyed hash of the token and
 * never past its `exp`, so a revoked token is accepted at most until its entry expires
 * (`cache_ttl_max` bounds that); an inactive one is remembered for `cache_ttl_neg`. The proof of
 * possession a bound token asks for (`cnf`: DPoP key or client certificate) is checked on every
 * request, as for `bearer`. With `introspection_accept = "application/token-introspection+jwt"`
 * the IdP's answer is a signed JWT (RFC 9701), verified before use (introspection-jwt.ts).
 */
import { AuthError } from "../../../errors.ts";
import type { RequestContext } from "../../../gateway/context.ts";
import { createKeyedHash } from "../../../oidc/client/cache-key.ts";
import { createGatewayClient } from "../../../oidc/client/client-auth.ts";
import { gatewayClientSettings } from "../../../oidc/client/client-auth-schema.ts";
import { introspectToken, introspectTokenAsJwt } from "../../../oidc/client/client-requests.ts";
import { accessTokenHash } from "../../../oidc/resource/dpop.ts";
import type { IssuerMetadata } from "../../../oidc/client/issuer.ts";
import type { Fresh } from "../../../oidc/client/token-cache.ts";
import { looksLikeJwt, MAX_TOKEN_LENGTH } from "../../../oidc/resource/verify-access-token.ts";
import type { Authenticator, AuthenticatorFactory } from "./authenticator.ts";
import { hideBearerToken, presentedTokenOf } from "./bearer-token.ts";
import { createProofOfPossession } from "./proof-of-possession.ts";
import { createFlowCache } from "./token-flow.ts";
import type { Grant } from "../mutate.ts";
import { namedValues } from "../schema.ts";
import { timedIdpCall } from "../../../oidc/client/timed-call.ts";

/**
 * What is cached per token, locally and in the fleet's Redis: the token and the active result,
 * nothing a plugin instance renders from them (instances with other header settings share it).
 */
interface ActiveToken extends Grant {
  readonly claims: Readonly<Record<string, unknown>>;
}

const inactive = (description: string) => new AuthError({ error: "invalid_token", description });

export const introspectionAuthenticator: AuthenticatorFactory = async ({ config, issuer, ctx }): Promise<Authenticator> => {
  const log = ctx.log;
  const metrics = ctx.metrics;
  const client = await createGatewayClient(
    gatewayClientSettings({ ...config, client_id: config.client_id! }, config.timeout, {
      endpoints: {
        introspection_endpoint: config.introspection_endpoint,
        mtls_token_endpoint: config.mtls_token_endpoint,
        mtls_introspection_endpoint: config.mtls_introspection_endpoint,
      },
      // Kong's `introspection_endpoint_auth_method`: this client only introspects.
      ...(config.introspection_endpoint_auth_method ? { methods: [config.introspection_endpoint_auth_method] } : {}),
    }),
    { ctx, fetch: issuer.fetch, where: 'plugin "openid-connect"', proxy: issuer.settings.proxy },
  );
  const pop = await createProofOfPossession(config, ctx);
  const leaveJwtsToBearer = !config.introspect_jwt_tokens && config.auth_methods.includes("bearer");
  // `ath` (RFC 9449 §4.2) per cached token, hashed once, for DPoP proofs only.
  const aths = new WeakMap<ActiveToken, string>();
  const athOf = async (value: ActiveToken): Promise<string> => {
    let ath = aths.get(value);
    if (ath === undefined) {
      ath = await accessTokenHash(value.token);
      aths.set(value, ath);
    }
    return ath;
  };
  const hash = await createKeyedHash(config.cache_tokens_salt, ctx.runtime.hmacSha256);
  // No `cache_ttl_resurrect`: a revoked token is accepted at most until its entry expires (see above).
  const tokens = await createFlowCache<ActiveToken>(config, ctx, {
    label: "introspection",
    item: "introspection",
    resurrect: false,
    onRefreshError: (error) => log.warn("oidc.introspection_refresh_failed", { issuer: issuer.issuer, code: error.code, detail: error.detail }),
  });
  const headers = namedValues(config.introspection_headers_names, config.introspection_headers_values);
  const parameters = namedValues(config.introspection_post_args_names, config.introspection_post_args_values);
  // Another answer may come for other headers or parameters: they are part of the cache key.
  const requestParts = JSON.stringify([
    client.clientId,
    config.introspection_endpoint ?? "",
    config.introspection_hint,
    headers ?? {},
    parameters ?? {},
    config.introspection_check_active,
    config.introspection_accept,
  ]);

  const jwtPolicy =
    config.introspection_accept === "application/token-introspection+jwt"
      ? { issuer: issuer.issuer, getKey: issuer.getKey, clientId: client.clientId, leeway: config.leeway }
      : undefined;
  // Kong's `introspection_headers_client`: the caller's headers of these names, when present;
  // a name `introspection_headers_names` configures too is the configured one's.
  const configured = new Set(config.introspection_headers_names.map((name) => name.toLowerCase()));
  const callerHeaderNames = config.introspection_headers_client.map((name) => name.toLowerCase()).filter((name) => !configured.has(name));
  const callerHeaders = (c: RequestContext): Record<string, string> | undefined => {
    let found: Record<string, string> | undefined;
    for (const name of callerHeaderNames) {
      const value = c.req.raw.headers.get(name);
      if (value !== null) (found ??= {})[name] = value;
    }
    return found;
  };
  const introspect = async (token: string, meta: IssuerMetadata, fromCaller?: Record<string, string>): Promise<Fresh<ActiveToken>> => {
    const sent = fromCaller ? { ...fromCaller, ...headers } : headers;
    const options = {
      hint: config.introspection_hint,
      allowHttp: issuer.allowHttp,
      timeout: config.timeout,
      ...(sent ? { headers: sent } : {}),
      ...(parameters ? { parameters } : {}),
    };
    const { result, jwt } = await timedIdpCall(
      metrics,
      "introspection",
      async () => {
        const call = client.call(meta.discovery, "introspection_endpoint");
        return jwtPolicy
          ? introspectTokenAsJwt(call, token, options, jwtPolicy)
          : { result: await introspectToken(call, token, options), jwt: undefined };
      },
      (r) => (r.result.active ? "ok" : "inactive"),
    );
    if (!result.active && config.introspection_check_active) throw inactive("the access token is not active");
    const now = Date.now() / 1000;
    const exp = typeof result.exp === "number" ? result.exp : undefined;
    if (exp !== undefined && exp <= now - config.leeway) throw inactive("the access token has expired");
    if (typeof result.nbf === "number" && result.nbf > now + config.leeway) throw inactive("the access token is not valid yet");
    if (typeof result.iss === "string" && result.iss !== issuer.issuer) throw inactive("the access token was issued by another issuer");
    const claims = result as Readonly<Record<string, unknown>>;
    return {
      value: jwt === undefined ? { token, claims } : { token, claims, jwt },
      // Never cached past the token's own expiry.
      expiresAt: exp !== undefined ? exp * 1000 : undefined,
    };
  };

  return {
    method: "introspection",
    challenges: pop.challenges,
    async authenticate(c) {
      const presented = await presentedTokenOf(c, config, pop);
      if (!presented) return undefined;
      if (leaveJwtsToBearer && looksLikeJwt(presented.token)) return undefined;
      // Refused before it is hashed or sent anywhere: bounded work for any header size.
      if (presented.token.length > MAX_TOKEN_LENGTH)
        throw inactive("the access token is too long").withChallenges(pop.challengesFor(presented.scheme));
      const meta = issuer.peek() ?? (await issuer.metadata());
      const fromCaller = callerHeaderNames.length ? callerHeaders(c) : undefined;
      let value: ActiveToken;
      try {
        if (config.cache_introspection) {
          const token = presented.token;
          c.var.logFields.token_cache = "miss";
          // The answer may depend on the caller's headers: their values are part of the key.
          const parts = fromCaller ? [issuer.issuer, token, requestParts, JSON.stringify(fromCaller)] : [issuer.issuer, token, requestParts];
          value = tokens.settle(c, await tokens.cache.get(await hash(parts), () => introspect(token, meta, fromCaller)));
        } else {
          c.var.logFields.token_cache = "off";
          value = (await introspect(presented.token, meta, fromCaller)).value;
        }
      } catch (error) {
        if (error instanceof AuthError) throw error.withChallenges(pop.challengesFor(presented.scheme));
        throw error;
      }
      await pop.check(c, presented, value.claims, pop.dpop !== "off" ? await athOf(value) : undefined);
      c.var.upstreamHeaders.delete("dpop");
      if (config.hide_credentials) await hideBearerToken(c, presented, config);
      return { method: "introspection", grant: value, challenges: pop.challengesFor(presented.scheme, value.claims) };
    },
    close: tokens.close,
  };
};
