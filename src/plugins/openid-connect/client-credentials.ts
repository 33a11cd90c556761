/**
 * `auth_methods = ["client_credentials"]`: the caller presents its own client id and secret; the
 * gateway exchanges them at the IdP's token endpoint (RFC 6749 §4.4), verifies the access token,
 * and sends it upstream. The token endpoint call is cached under a keyed hash of the credentials,
 * so the repeat request costs one HMAC and one map lookup.
 */
import type { Challenge } from "../../errors.ts";
import { createKeyedHash } from "../../oidc/cache-key.ts";
import type { IssuerMetadata } from "../../oidc/issuer.ts";
import type { Fresh } from "../../oidc/token-cache.ts";
import { requestClientCredentialsToken, type ClientCredentials } from "../../oidc/token-endpoint.ts";
import type { AccessTokenPolicy } from "../../oidc/verify-access-token.ts";
import { REALM, TOKEN_CHALLENGES, type Authenticator, type AuthenticatorFactory } from "./authenticator.ts";
import { hideCredentials, readClientCredentials } from "./credentials.ts";
import { allowedAlgorithms } from "./schema.ts";
import { createFlowCache, fetchGrant, type GrantDeps } from "./token-flow.ts";
import type { Grant } from "./upstream-headers.ts";

/**
 * What is cached per credentials, locally and in the fleet's Redis: the token and its claims,
 * nothing a plugin instance renders from them (routes with other header settings share it).
 */
type CachedToken = Grant;

export const clientCredentialsAuthenticator: AuthenticatorFactory = async ({ config, issuer, ctx }): Promise<Authenticator> => {
  const log = ctx.log;
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

  const grantDeps: GrantDeps = {
    issuer,
    policy,
    metrics: ctx.metrics,
    challenges,
    onRefused: (error) => log.info("oidc.client_refused", { issuer: issuer.issuer, detail: error.description }),
  };

  const fetchToken = (credentials: ClientCredentials, meta: IssuerMetadata): Promise<Fresh<CachedToken>> =>
    fetchGrant(
      () =>
        requestClientCredentialsToken(meta.discovery, credentials, {
          authMethod: config.token_endpoint_auth_method,
          scopes: config.scopes,
          audience: config.audience,
          fetch: issuer.fetch,
          allowHttp: issuer.allowHttp,
          timeout: config.timeout,
        }),
      config.enable_hs_signatures ? credentials.clientSecret : undefined,
      grantDeps,
    );

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
