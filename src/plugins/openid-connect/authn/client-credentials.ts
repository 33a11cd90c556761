/**
 * `auth_methods = ["client_credentials"]`: the caller presents its own client id and secret; the
 * gateway exchanges them at the IdP's token endpoint (RFC 6749 §4.4), verifies the access token,
 * and sends it upstream. The token endpoint call is cached under a keyed hash of the credentials,
 * so the repeat request costs one HMAC and one map lookup (token-flow.ts).
 */
import { requestClientCredentialsToken } from "../../../oidc/client/token-endpoint.ts";
import { REALM, type Authenticator, type AuthenticatorFactory } from "./authenticator.ts";
import { CLIENT_CREDENTIALS } from "./credentials.ts";
import { grantAuthenticator } from "./token-flow.ts";

export const clientCredentialsAuthenticator: AuthenticatorFactory = async (deps): Promise<Authenticator> => {
  const { config, issuer, ctx } = deps;
  const log = ctx.log;
  return grantAuthenticator(deps, {
    method: "client_credentials",
    challenges: [{ scheme: config.client_credentials_param_type.includes("header") ? "Basic" : "Bearer", params: { realm: REALM } }],
    paramTypes: config.client_credentials_param_type,
    names: CLIENT_CREDENTIALS,
    requestParts: JSON.stringify([config.scopes, config.audience, config.token_endpoint_auth_method]),
    request: (credentials, meta) =>
      requestClientCredentialsToken(meta.discovery, credentials, {
        authMethod: config.token_endpoint_auth_method,
        scopes: config.scopes,
        audience: config.audience,
        fetch: issuer.fetch,
        allowHttp: issuer.allowHttp,
        timeout: config.timeout,
      }),
    hsSecret: (credentials) => (config.enable_hs_signatures ? credentials.clientSecret : undefined),
    onRefused: (error) => log.info("oidc.client_refused", { issuer: issuer.issuer, detail: error.description }),
    onRefreshError: (error) => log.warn("oidc.token_refresh_failed", { issuer: issuer.issuer, code: error.code, detail: error.detail }),
  });
};
