/**
 * `auth_methods = ["password"]`: the caller sends a user's name and password (Basic, query or
 * body, as `password_param_type` allows); the gateway exchanges them at the token endpoint with
 * the password grant (RFC 6749 §4.3), authenticating as its own client (`client_id`,
 * `client_auth`), verifies the access token and sends it upstream.
 *
 * Tokens are cached under a keyed hash of user, password and the gateway's client, so a repeat
 * request costs one HMAC and one map lookup, and a wrong password is answered from the negative
 * cache for `cache_ttl_neg` instead of reaching the IdP again.
 *
 * A Basic header is never read here when `client_credentials` is on and reads headers: it is the
 * RFC 6749 §2.3.1 way to present client credentials, and one header is attributed to one method
 * only (never tried as both), so turning on the (deprecated, RFC 9700 §2.4) password grant does
 * not change what existing client-credentials callers' headers mean, and a client secret is
 * never sent to the IdP as a user's password.
 */
import type { Challenge } from "../../errors.ts";
import { createKeyedHash } from "../../oidc/cache-key.ts";
import { createGatewayClient } from "../../oidc/client-auth.ts";
import { gatewayClientSettings } from "../../oidc/client-auth-schema.ts";
import { requestGrant } from "../../oidc/client-requests.ts";
import type { IssuerMetadata } from "../../oidc/issuer.ts";
import type { Fresh } from "../../oidc/token-cache.ts";
import type { AccessTokenPolicy } from "../../oidc/verify-access-token.ts";
import { REALM, TOKEN_CHALLENGES, type Authenticator, type AuthenticatorFactory } from "./authenticator.ts";
import { hideCredentials, readClientCredentials, USER_CREDENTIALS, type FoundCredentials } from "./credentials.ts";
import { allowedAlgorithms, type OpenIdConnectConfig } from "./schema.ts";
import { createFlowCache, fetchGrant, type GrantDeps } from "./token-flow.ts";
import type { Grant } from "./upstream-headers.ts";

/**
 * What is cached per user, locally and in the fleet's Redis: the token and its claims, nothing a
 * plugin instance renders from them (routes with other header settings share it).
 */
type CachedToken = Grant;

/** Where this method looks for a user's credentials, once `client_credentials` took what is its. */
export function passwordParamTypes(config: Pick<OpenIdConnectConfig, "auth_methods" | "client_credentials_param_type" | "password_param_type">): OpenIdConnectConfig["password_param_type"] {
  const basicIsClients = config.auth_methods.includes("client_credentials") && config.client_credentials_param_type.includes("header");
  return config.password_param_type.filter((t) => t !== "header" || !basicIsClients);
}

export const passwordAuthenticator: AuthenticatorFactory = async ({ config, issuer, ctx }): Promise<Authenticator> => {
  const log = ctx.log;
  const client = await createGatewayClient(gatewayClientSettings({ ...config, client_id: config.client_id! }, config.timeout), {
    ctx,
    fetch: issuer.fetch,
    where: 'plugin "openid-connect"',
  });
  const paramTypes = passwordParamTypes(config);
  if (paramTypes.length === 0) {
    log.warn("oidc.password_unreachable", { detail: "'password_param_type' has only \"header\", and a Basic header goes to client_credentials: no request reaches the password method" });
  }
  const challenges: readonly Challenge[] = [{ scheme: "Basic", params: { realm: REALM } }];
  const policy: AccessTokenPolicy = { algorithms: allowedAlgorithms(config), leeway: config.leeway };
  const hash = await createKeyedHash(config.cache_tokens_salt, ctx.runtime.hmacSha256);
  const tokens = await createFlowCache<CachedToken>(config, ctx, {
    label: "password",
    item: "tokens",
    resurrect: true,
    onRefreshError: (error) => log.warn("oidc.token_refresh_failed", { issuer: issuer.issuer, grant: "password", code: error.code, detail: error.detail }),
  });
  // Everything but the user's credentials that decides the token (serialised once, unambiguously).
  const requestParts = JSON.stringify([client.clientId, client.methods, config.scopes, config.audience]);

  const grantDeps: GrantDeps = {
    issuer,
    policy,
    metrics: ctx.metrics,
    challenges,
    onRefused: () => log.info("oidc.password_refused", { issuer: issuer.issuer }),
  };
  const hsSecret = config.enable_hs_signatures ? config.client_secret : undefined;

  const fetchToken = (user: FoundCredentials, meta: IssuerMetadata): Promise<Fresh<CachedToken>> =>
    fetchGrant(
      () =>
        requestGrant(client.call(meta.discovery, "token_endpoint"), { type: "password", username: user.clientId, password: user.clientSecret }, {
          scopes: config.scopes,
          audience: config.audience,
          allowHttp: issuer.allowHttp,
          timeout: config.timeout,
        }),
      hsSecret,
      grantDeps,
    );

  return {
    method: "password",
    challenges,
    async authenticate(c) {
      if (paramTypes.length === 0) return undefined;
      const found = await readClientCredentials(c, paramTypes, { hide: config.hide_credentials, challenges, names: USER_CREDENTIALS });
      if (!found) return undefined;
      const meta = issuer.peek() ?? (await issuer.metadata());
      let value: CachedToken;
      if (config.cache_tokens) {
        const key = await hash([issuer.issuer, meta.discovery.token_endpoint ?? "", found.clientId, found.clientSecret, requestParts]);
        c.var.logFields.token_cache = "miss";
        value = tokens.settle(c, await tokens.cache.get(key, () => fetchToken(found, meta)));
      } else {
        value = (await fetchToken(found, meta)).value;
        c.var.logFields.token_cache = "off";
      }
      if (config.hide_credentials) hideCredentials(c, found, USER_CREDENTIALS);
      return { method: "password", grant: value, challenges: TOKEN_CHALLENGES };
    },
    close: tokens.close,
  };
};
