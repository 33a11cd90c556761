/**
 * `auth_methods = ["password"]`: the caller sends a user's name and password (Basic, query or
 * body, as `password_param_type` allows); the gateway exchanges them at the token endpoint with
 * the password grant (RFC 6749 §4.3), authenticating as its own client (`client_id`,
 * `client_auth`), verifies the access token and sends it upstream.
 *
 * Tokens are cached under a keyed hash of user, password and the gateway's client, so a repeat
 * request costs one HMAC and one map lookup, and a wrong password is answered from the negative
 * cache for `cache_ttl_neg` instead of reaching the IdP again (token-flow.ts).
 *
 * A Basic header is never read here when `client_credentials` is on and reads headers: it is the
 * RFC 6749 §2.3.1 way to present client credentials, and one header is attributed to one method
 * only (never tried as both), so turning on the (deprecated, RFC 9700 §2.4) password grant does
 * not change what existing client-credentials callers' headers mean, and a client secret is
 * never sent to the IdP as a user's password.
 */
import { createGatewayClient } from "../../../oidc/client/client-auth.ts";
import { gatewayClientSettings } from "../../../oidc/client/client-auth-schema.ts";
import { requestGrant } from "../../../oidc/client/client-requests.ts";
import { REALM, type Authenticator, type AuthenticatorFactory } from "./authenticator.ts";
import { USER_CREDENTIALS } from "./credentials.ts";
import { namedValues, type OpenIdConnectConfig } from "../schema.ts";
import { grantAuthenticator } from "./token-flow.ts";

/** Where this method looks for a user's credentials, once `client_credentials` took what is its. */
export function passwordParamTypes(
  config: Pick<OpenIdConnectConfig, "auth_methods" | "client_credentials_param_type" | "password_param_type">,
): OpenIdConnectConfig["password_param_type"] {
  const basicIsClients = config.auth_methods.includes("client_credentials") && config.client_credentials_param_type.includes("header");
  return config.password_param_type.filter((t) => t !== "header" || !basicIsClients);
}

export const passwordAuthenticator: AuthenticatorFactory = async (deps): Promise<Authenticator> => {
  const { config, issuer, ctx } = deps;
  const log = ctx.log;
  const headers = namedValues(config.token_headers_names, config.token_headers_values);
  const parameters = namedValues(config.token_post_args_names, config.token_post_args_values);
  const settings = gatewayClientSettings({ ...config, client_id: config.client_id! }, config.timeout);
  const client = await createGatewayClient(
    config.token_endpoint ? { ...settings, endpoints: { ...settings.endpoints, token_endpoint: config.token_endpoint } } : settings,
    {
      ctx,
      fetch: issuer.fetch,
      where: 'plugin "openid-connect"',
      proxy: issuer.settings.proxy,
    },
  );
  const paramTypes = passwordParamTypes(config);
  if (paramTypes.length === 0) {
    log.warn("oidc.password_unreachable", {
      detail: "'password_param_type' has only \"header\", and a Basic header goes to client_credentials: no request reaches the password method",
    });
  }
  const hsSecret = config.enable_hs_signatures ? config.client_secret : undefined;
  return grantAuthenticator(deps, {
    method: "password",
    challenges: [{ scheme: "Basic", params: { realm: REALM } }],
    paramTypes,
    names: USER_CREDENTIALS,
    requestParts: JSON.stringify([
      client.clientId,
      client.methods,
      config.scopes,
      config.audience,
      config.token_endpoint ?? "",
      headers ?? {},
      parameters ?? {},
    ]),
    request: (user, meta) =>
      requestGrant(
        client.call(meta.discovery, "token_endpoint"),
        { type: "password", username: user.clientId, password: user.clientSecret },
        {
          scopes: config.scopes,
          audience: config.audience,
          ...(headers ? { headers } : {}),
          ...(parameters ? { parameters } : {}),
          allowHttp: issuer.allowHttp,
          timeout: config.timeout,
        },
      ),
    hsSecret: () => hsSecret,
    onRefused: () => log.info("oidc.password_refused", { issuer: issuer.issuer }),
    onRefreshError: (error) =>
      log.warn("oidc.token_refresh_failed", { issuer: issuer.issuer, grant: "password", code: error.code, detail: error.detail }),
  });
};
