/**
 * Whatever oauth4webapi or the network threw while calling an IdP endpoint, as the gateway's
 * coded errors. The one rule that differs between callers is whose fault an HTTP refusal is:
 * the caller's credentials (token-endpoint.ts) or the gateway's own client (client-requests.ts).
 */
import * as oauth from "oauth4webapi";
import { AuthError, IdpError } from "../../errors.ts";
import { networkError } from "./outbound.ts";

/** Judges an answer that was not a success: HTTP `status`, with the OAuth `error` code when the body had one. */
export type Refusal = (status: number, oauthError?: string) => AuthError | IdpError;

/** `what` names the endpoint in messages ("token endpoint"), `endpoint` is its URL without query. */
export function classifyIdpError(error: unknown, what: string, endpoint: string, timeout: number, refused: Refusal): AuthError | IdpError {
  if (error instanceof IdpError || error instanceof AuthError) return error;
  if (error instanceof oauth.ResponseBodyError) return refused(error.status, error.error);
  if (error instanceof oauth.WWWAuthenticateChallengeError) return refused(error.response.status);
  if (error instanceof oauth.OperationProcessingError) {
    // A non-200 answer without a readable OAuth error body (plain text, HTML, empty): judge by status.
    if (error.cause instanceof Response && error.cause.status !== 200) return refused(error.cause.status);
    const net = networkError(error.cause, endpoint, timeout);
    if (net.failure === "timeout") return net;
    return new IdpError("bad_response", `${what} ${endpoint} sent an invalid response (${(error.code ?? "invalid").toLowerCase()})`);
  }
  if (error instanceof oauth.UnsupportedOperationError) return new IdpError("bad_response", `${what} ${endpoint} sent an unsupported token type`);
  if (error instanceof TypeError) return new IdpError("misconfigured", `${what} ${endpoint} cannot be used (${error.message.toLowerCase()})`);
  return new IdpError("bad_response", `${what} ${endpoint} failed`);
}
