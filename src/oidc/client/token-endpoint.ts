/**
 * The client credentials grant (RFC 6749 §4.4) through oauth4webapi, and the one place that
 * decides whose fault a failed token request is:
 *
 * - the IdP refused the caller's credentials (400/401/403, with or without an OAuth error body:
 *   IdPs differ) → `AuthError` (401, `invalid_client`);
 * - the IdP could not be reached → `IdpError` `unreachable` (503), took too long → `timeout`
 *   (504), answered 5xx or something that is not a token response → `bad_response` (502).
 *
 * Neither error carries the IdP's body or anything we sent.
 */
import * as oauth from "oauth4webapi";
import { AuthError, IdpError } from "../../errors.ts";
import type { FetchLike } from "../../runtime/types.ts";
import { clientSecretBasic } from "./basic-credentials.ts";
import { classifyIdpError } from "./idp-errors.ts";
import { endpointName } from "./outbound.ts";

export interface ClientCredentials {
  readonly clientId: string;
  readonly clientSecret: string;
}

type TokenEndpointAuthMethod = "client_secret_basic" | "client_secret_post";

export interface TokenRequestOptions {
  /** How the caller's credentials are presented to the token endpoint. */
  readonly authMethod: TokenEndpointAuthMethod;
  /** Sent as `scope` when not empty. */
  readonly scopes?: readonly string[];
  /** Sent as `audience` parameters when not empty. */
  readonly audience?: readonly string[];
  /** More form parameters (Kong's `token_post_args_*`); never override the grant's own. */
  readonly parameters?: Readonly<Record<string, string>> | undefined;
  /** More request headers (Kong's `token_headers_*`). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly fetch: FetchLike;
  /** The IdP is plain http (development only). */
  readonly allowHttp: boolean;
  /** For the timeout message (ms). */
  readonly timeout: number;
}

export type TokenResponse = oauth.TokenEndpointResponse;

/** Status codes with which a token endpoint refuses a client (RFC 6749 §5.2 uses 400 and 401). */
const REFUSALS = new Set([400, 401, 403]);

function refusedOrFailed(status: number, endpoint: string, oauthError?: string): AuthError | IdpError {
  if (REFUSALS.has(status)) {
    return new AuthError({
      error: "invalid_client",
      description: `the identity provider refused the client credentials${oauthError ? ` (${oauthError.slice(0, 64)})` : ""}`,
    });
  }
  return new IdpError("bad_response", `token endpoint ${endpoint} answered HTTP ${status}`);
}

/**
 * Asks `as.token_endpoint` for a token with the caller's client credentials. Resolves with the
 * parsed response (tokens not yet verified); rejects with `AuthError` or `IdpError` only.
 */
export async function requestClientCredentialsToken(
  as: oauth.AuthorizationServer,
  credentials: ClientCredentials,
  options: TokenRequestOptions,
): Promise<TokenResponse> {
  if (typeof as.token_endpoint !== "string") throw new IdpError("misconfigured", `the discovery document of ${as.issuer} has no token_endpoint`);
  const endpoint = endpointName(as.token_endpoint);
  const client: oauth.Client = { client_id: credentials.clientId };
  const auth =
    options.authMethod === "client_secret_post" ? oauth.ClientSecretPost(credentials.clientSecret) : clientSecretBasic(credentials.clientSecret);
  const params = new URLSearchParams(options.parameters);
  // The grant's own parameters win over configured ones.
  for (const name of ["grant_type", "client_id", "client_secret", "scope", "audience"]) params.delete(name);
  if (options.scopes?.length) params.set("scope", options.scopes.join(" "));
  for (const a of options.audience ?? []) params.append("audience", a);
  const fetch = options.fetch;
  const httpOptions = {
    [oauth.customFetch]: (url: string, init: oauth.CustomFetchOptions<"POST", URLSearchParams>) => fetch(url, init as RequestInit),
    ...(options.allowHttp ? { [oauth.allowInsecureRequests]: true } : {}),
    ...(options.headers ? { headers: new Headers(options.headers) } : {}),
  };
  try {
    const response = await oauth.clientCredentialsGrantRequest(as, client, auth, params, httpOptions);
    return await oauth.processClientCredentialsResponse(as, client, response);
  } catch (error) {
    throw classifyIdpError(error, "token endpoint", endpoint, options.timeout, (status, oauthError) => refusedOrFailed(status, endpoint, oauthError));
  }
}
