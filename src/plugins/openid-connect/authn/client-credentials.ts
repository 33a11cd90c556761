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
import { namedValues } from "../schema.ts";

export const clientCredentialsAuthenticator: AuthenticatorFactory = async (deps): Promise<Authenticator> => {
  const { config, issuer, ctx } = deps;
  const log = ctx.log;
  const headers = namedValues(config.token_headers_names, config.token_headers_values);
  const parameters = namedValues(config.token_post_args_names, config.token_post_args_values);
  const tokenEndpoint = config.token_endpoint;
  return grantAuthenticator(deps, {
    method: "client_credentials",
    challenges: [{ scheme: config.client_credentials_param_type.includes("header") ? "Basic" : "Bearer", params: { realm: REALM } }],
    paramTypes: config.client_credentials_param_type,
    names: CLIENT_CREDENTIALS,
    requestParts: JSON.stringify([
      config.scopes,
      config.audience,
      config.token_endpoint_auth_method,
      tokenEndpoint ?? "",
      headers ?? {},
      parameters ?? {},
    ]),
    request: (credentials, meta) =>
      requestClientCredentialsToken(tokenEndpoint ? { ...meta.discovery, token_endpoint: tokenEndpoint } : meta.discovery, credentials, {
        authMethod: config.token_endpoint_auth_method,
        headers,
        parameters,
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
