/**
 * The one place where errors become HTTP responses: Kong-style JSON bodies and, for
 * authentication failures, RFC 6750 §3 / RFC 9449 §7 `WWW-Authenticate` challenges.
 */
import { AuthError, GatewayError, UpgradeRequiredError, type Challenge } from "../errors.ts";

const JSON_TYPE = "application/json; charset=utf-8";

/** RFC 9110 quoted-string. */
const quote = (v: string) => `"${v.replace(/[\\"]/g, (m) => `\\${m}`)}"`;

function formatChallenge(challenge: Challenge, error: AuthError): string {
  const params: string[] = [];
  for (const [k, v] of Object.entries(challenge.params ?? {})) params.push(`${k}=${quote(v)}`);
  if (challenge.scheme !== "Basic" && error.error) {
    params.push(`error=${quote(error.error)}`);
    if (error.description) params.push(`error_description=${quote(error.description)}`);
    if (error.scope && error.error === "insufficient_scope") params.push(`scope=${quote(error.scope)}`);
  }
  return params.length ? `${challenge.scheme} ${params.join(", ")}` : challenge.scheme;
}

export interface ErrorResponseOptions {
  /** Add the error detail to the body (a plugin's `display_errors`). */
  readonly displayErrors?: boolean;
  /** Replaces the 401 body's message (a plugin's `unauthorized_error_message`). */
  readonly unauthorizedMessage?: string;
  readonly requestId?: string;
}

export function errorResponse(error: unknown, options: ErrorResponseOptions = {}): Response {
  const headers = new Headers({ "content-type": JSON_TYPE });
  if (options.requestId) headers.set("x-request-id", options.requestId);
  if (!(error instanceof GatewayError)) {
    return new Response(JSON.stringify({ message: "An unexpected error occurred" }), { status: 500, headers });
  }
  const body: Record<string, string> = { message: error.publicMessage };
  if (error instanceof AuthError) {
    if (error.status === 401 && options.unauthorizedMessage) body.message = options.unauthorizedMessage;
    for (const c of error.challenges) headers.append("www-authenticate", formatChallenge(c, error));
    for (const [k, v] of Object.entries(error.headers)) headers.set(k, v);
    if (error.headers["dpop-nonce"]) headers.set("cache-control", "no-store");
    if (options.displayErrors && error.error) {
      body.error = error.error;
      if (error.description) body.error_description = error.description;
    }
  } else if (error instanceof UpgradeRequiredError) {
    for (const [k, v] of Object.entries(error.responseHeaders)) headers.set(k, v);
  } else if (options.displayErrors && error.detail) {
    body.error_description = error.detail;
  }
  return new Response(JSON.stringify(body), { status: error.status, headers });
}
