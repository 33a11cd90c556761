/**
 * Requests the gateway makes as its own client (`client_id` + `client_auth`, see client-auth.ts):
 * a token for itself (client credentials, RFC 6749 §4.4), a token for a user whose name and
 * password a caller sent (password grant, §4.3), and token introspection (RFC 7662).
 *
 * Whose fault a failure is differs from the caller's client credentials (token-endpoint.ts):
 * here the client is the gateway, so an IdP that refuses it says our configuration is wrong
 * (`IdpError` `misconfigured`, 503, logged), never the caller's. Only `invalid_grant` in a
 * password grant (RFC 6749 §5.2: the resource owner credentials are invalid) is the caller's
 * (`AuthError`, 401). Errors never carry the IdP's body, a password or a token.
 */
import * as oauth from "oauth4webapi";
import { AuthError, IdpError } from "../../errors.ts";
import type { ClientCall } from "./client-auth.ts";
import { classifyIdpError } from "./idp-errors.ts";
import { INTROSPECTION_JWT, verifyIntrospectionJwt, type IntrospectionJwtPolicy } from "./introspection-jwt.ts";
import { endpointName } from "./outbound.ts";

/** RFC 8693's grant and token type for an access token. */
export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

export type GatewayGrant =
  | { readonly type: "client_credentials" }
  | { readonly type: "password"; readonly username: string; readonly password: string }
  | { readonly type: typeof TOKEN_EXCHANGE_GRANT; readonly subjectToken: string };

interface ClientRequestOptions {
  /** The IdP is plain http (development only). */
  readonly allowHttp: boolean;
  /** For the timeout message (ms). */
  readonly timeout: number;
}

export interface GrantOptions extends ClientRequestOptions {
  /** Sent as `scope` when not empty. */
  readonly scopes?: readonly string[];
  /** Sent as `audience` parameters when not empty. */
  readonly audience?: readonly string[];
  /** More form parameters (upstream-oauth's `token_post_args`); never override the grant's own. */
  readonly parameters?: Readonly<Record<string, string>>;
  /** More request headers (upstream-oauth's `token_headers`). */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface IntrospectionOptions extends ClientRequestOptions {
  /** `token_type_hint` (Kong's `introspection_hint`); empty: none sent. */
  readonly hint?: string;
  /** More form parameters (Kong's `introspection_post_args_*`); never override `token` or the hint. */
  readonly parameters?: Readonly<Record<string, string>>;
  /** More request headers (Kong's `introspection_headers_*`). */
  readonly headers?: Readonly<Record<string, string>>;
}

function httpOptions(call: ClientCall, options: ClientRequestOptions) {
  const fetch = call.fetch;
  return {
    [oauth.customFetch]: (url: string, init: oauth.CustomFetchOptions<"POST", URLSearchParams>) => fetch(url, init as RequestInit),
    ...(options.allowHttp ? { [oauth.allowInsecureRequests]: true } : {}),
  };
}

function refused(status: number, call: ClientCall, what: string, oauthError?: string): IdpError {
  if (status >= 500 || status < 400) return new IdpError("bad_response", `${what} ${endpointName(call.url)} answered HTTP ${status}`);
  const code = oauthError ? `, ${oauthError.slice(0, 64)}` : "";
  return new IdpError(
    "misconfigured",
    `${what} ${endpointName(call.url)} refused the gateway's client "${call.client.client_id}" (${call.method}: HTTP ${status}${code})`,
  );
}

/** Maps whatever oauth4webapi or the network threw to `IdpError`, or `AuthError` for a user's wrong password. */
function classifyClientError(
  error: unknown,
  call: ClientCall,
  what: string,
  timeout: number,
  callerGrant?: GatewayGrant["type"],
): AuthError | IdpError {
  return classifyIdpError(error, what, endpointName(call.url), timeout, (status, oauthError) =>
    callerGrant === "password" && oauthError === "invalid_grant"
      ? new AuthError({ error: "invalid_grant", description: "the identity provider refused the username or password" })
      : callerGrant === TOKEN_EXCHANGE_GRANT && oauthError === "invalid_grant"
        ? new AuthError({ error: "invalid_token", description: "the identity provider refused to exchange the access token" })
        : refused(status, call, what, oauthError),
  );
}

/**
 * Whether `error` is the IdP refusing the gateway's client (`invalid_client`, or a bare 401):
 * right after a key rotation, an IdP that cached the old JWKS answers so to the new key.
 */
function refusedClient(error: unknown): boolean {
  if (error instanceof oauth.ResponseBodyError) return error.error === "invalid_client" || (error.status === 401 && error.error !== "invalid_grant");
  if (error instanceof oauth.WWWAuthenticateChallengeError) return error.response.status === 401;
  return false;
}

/** Runs `request` with `call`, and once more signed with the previous key when the IdP refused the client right after a rotation. */
async function withRetry<T>(call: ClientCall, request: (call: ClientCall) => Promise<T>): Promise<T> {
  try {
    return await request(call);
  } catch (error) {
    if (!call.withPreviousKey || !refusedClient(error)) throw error;
    const retry = await call.withPreviousKey().catch(() => undefined);
    if (!retry) throw error;
    return await request(retry);
  }
}

/** A token from the token endpoint with the gateway's client authentication; tokens are not verified here. */
export async function requestGrant(call: ClientCall, grant: GatewayGrant, options: GrantOptions): Promise<oauth.TokenEndpointResponse> {
  const params = new URLSearchParams(options.parameters);
  if (grant.type === "password") {
    params.set("username", grant.username);
    params.set("password", grant.password);
  } else if (grant.type === TOKEN_EXCHANGE_GRANT) {
    params.set("subject_token", grant.subjectToken);
    params.set("subject_token_type", ACCESS_TOKEN_TYPE);
    params.set("requested_token_type", ACCESS_TOKEN_TYPE);
  }
  if (options.scopes?.length) params.set("scope", options.scopes.join(" "));
  for (const a of options.audience ?? []) params.append("audience", a);
  try {
    return await withRetry(call, async (c) => {
      const response = await oauth.genericTokenEndpointRequest(c.as, c.client, c.auth, grant.type, new URLSearchParams(params), {
        ...httpOptions(c, options),
        ...(options.headers ? { headers: new Headers(options.headers) } : {}),
      });
      return await oauth.processGenericTokenEndpointResponse(c.as, c.client, response);
    });
  } catch (error) {
    // A refused subject token (invalid_grant) is the caller's, as a refused password is.
    throw classifyClientError(error, call, "token endpoint", options.timeout, grant.type);
  }
}

function sendIntrospection(c: ClientCall, token: string, options: IntrospectionOptions, jwt: boolean): Promise<Response> {
  return oauth.introspectionRequest(c.as, c.client, c.auth, token, {
    ...httpOptions(c, options),
    additionalParameters: { ...options.parameters, ...(options.hint ? { token_type_hint: options.hint } : {}) },
    ...(options.headers ? { headers: new Headers(options.headers) } : {}),
    ...(jwt ? { requestJwtResponse: true } : {}),
  });
}

/** RFC 7662 introspection of `token`; `active: false` is a result, not an error. */
export async function introspectToken(call: ClientCall, token: string, options: IntrospectionOptions): Promise<oauth.IntrospectionResponse> {
  try {
    return await withRetry(call, async (c) => oauth.processIntrospectionResponse(c.as, c.client, await sendIntrospection(c, token, options, false)));
  } catch (error) {
    throw classifyClientError(error, call, "introspection endpoint", options.timeout);
  }
}

/**
 * RFC 9701 introspection of `token`: asked for a signed JWT answer (`Accept:
 * application/token-introspection+jwt`), verified under `policy`; also returns the JWT. A plain
 * JSON answer is refused (`bad_response`): it would be an unsigned downgrade of what is configured.
 */
export async function introspectTokenAsJwt(
  call: ClientCall,
  token: string,
  options: IntrospectionOptions,
  policy: IntrospectionJwtPolicy,
): Promise<{ readonly result: oauth.IntrospectionResponse; readonly jwt: string }> {
  const endpoint = endpointName(call.url);
  try {
    return await withRetry(call, async (c) => {
      const response = await sendIntrospection(c, token, options, true);
      // Refusals and failures: oauth4webapi reads the IdP's error as for JSON answers, and throws.
      if (response.status !== 200) await oauth.processIntrospectionResponse(c.as, c.client, response);
      const type = (response.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
      if (type !== INTROSPECTION_JWT) {
        await response.body?.cancel();
        throw new IdpError(
          "bad_response",
          `introspection endpoint ${endpoint} answered ${type || "no content type"}, not the signed JWT 'introspection_accept' asks for`,
        );
      }
      const jwt = await response.text();
      const result = (await verifyIntrospectionJwt(jwt, policy, endpoint)) as oauth.IntrospectionResponse;
      return { result, jwt };
    });
  } catch (error) {
    throw classifyClientError(error, call, "introspection endpoint", options.timeout);
  }
}
