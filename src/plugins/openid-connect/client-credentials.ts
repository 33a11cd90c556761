/**
 * `auth_methods = ["client_credentials"]`: the caller presents its own client id and secret; the
 * gateway exchanges them at the IdP's token endpoint (RFC 6749 §4.4), verifies the access token,
 * and sends it upstream. The token endpoint call is cached under a keyed hash of the credentials,
 * so the repeat request costs one HMAC and one map lookup.
 */
import { AuthError, IdpError, type Challenge } from "../../errors.ts";
import { createKeyedHash } from "../../oidc/cache-key.ts";
import type { IssuerMetadata } from "../../oidc/issuer.ts";
import type { Fresh } from "../../oidc/token-cache.ts";
import { requestClientCredentialsToken, type ClientCredentials } from "../../oidc/token-endpoint.ts";
import { AccessTokenError, looksLikeJwt, verifyAccessToken, type AccessTokenPolicy } from "../../oidc/verify-access-token.ts";
import { REALM, TOKEN_CHALLENGES, type Authenticator, type AuthenticatorFactory } from "./authenticator.ts";
import { hideCredentials, readClientCredentials } from "./credentials.ts";
import { allowedAlgorithms } from "./schema.ts";
import { createFlowCache } from "./token-flow.ts";
import type { Grant } from "./upstream-headers.ts";

/**
 * What is cached per credentials, locally and in the fleet's Redis: the token and its claims,
 * nothing a plugin instance renders from them (routes with other header settings share it).
 */
type CachedToken = Grant;

export const clientCredentialsAuthenticator: AuthenticatorFactory = async ({ config, issuer, ctx }): Promise<Authenticator> => {
  const log = ctx.log;
  const metrics = ctx.metrics;
  const challenges: readonly Challenge[] = [{ scheme: config.client_credentials_param_type.includes("header") ? "Basic" : "Bearer", params: { realm: REALM } }];
  const policy: AccessTokenPolicy = { algorithms: allowedAlgorithms(config), leeway: config.leeway };
  const hash = await createKeyedHash(config.cache_tokens_salt, ctx.runtime.hmacSha256);
  const tokens = await createFlowCache<CachedToken>(config, ctx, {
    label: "client_credentials",
    item: "tokens",
    resurrect: true,
    onRefreshError: (error) => log.warn("oidc.token_refresh_failed", { issuer: issuer.issuer, code: error.code, detail: error.detail }),
  });
  // Everything but the caller's credentials that decides the token (serialised once, unambiguously).
  const requestParts = JSON.stringify([config.scopes, config.audience, config.token_endpoint_auth_method]);

  const fetchToken = async (credentials: ClientCredentials, meta: IssuerMetadata): Promise<Fresh<CachedToken>> => {
    const started = performance.now();
    let response;
    try {
      response = await requestClientCredentialsToken(meta.discovery, credentials, {
        authMethod: config.token_endpoint_auth_method,
        scopes: config.scopes,
        audience: config.audience,
        fetch: issuer.fetch,
        allowHttp: issuer.allowHttp,
        timeout: config.timeout,
      });
      metrics?.idp("token", "ok", (performance.now() - started) / 1000);
    } catch (error) {
      metrics?.idp("token", error instanceof AuthError ? "refused" : error instanceof IdpError ? error.failure : "error", (performance.now() - started) / 1000);
      if (error instanceof AuthError) {
        log.info("oidc.client_refused", { issuer: issuer.issuer, detail: error.description });
        throw error.withChallenges(challenges);
      }
      throw error;
    }
    const token = response.access_token;
    let expiresAt = typeof response.expires_in === "number" ? Date.now() + response.expires_in * 1000 : undefined;
    let claims: Readonly<Record<string, unknown>> | undefined;
    if (looksLikeJwt(token)) {
      try {
        const verified = await verifyAccessToken(token, issuer, policy, config.enable_hs_signatures ? credentials.clientSecret : undefined);
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
    method: "client_credentials",
    challenges,
    async authenticate(c) {
      const found = await readClientCredentials(c, config.client_credentials_param_type, { hide: config.hide_credentials, challenges });
      if (!found) return undefined;
      const meta = issuer.peek() ?? (await issuer.metadata());
      let value: CachedToken;
      if (config.cache_tokens) {
        const key = await hash([issuer.issuer, meta.discovery.token_endpoint ?? "", found.clientId, found.clientSecret, requestParts]);
        c.var.logFields.token_cache = "miss"; // replaced below unless the miss ends in a rejection
        value = tokens.settle(c, await tokens.cache.get(key, () => fetchToken(found, meta)));
      } else {
        value = (await fetchToken(found, meta)).value;
        c.var.logFields.token_cache = "off";
      }
      if (config.hide_credentials) hideCredentials(c, found);
      return { method: "client_credentials", grant: value, challenges: TOKEN_CHALLENGES };
    },
    close: tokens.close,
  };
};
