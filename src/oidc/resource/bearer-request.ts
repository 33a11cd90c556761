/**
 * Finds the access token a caller presents in the request line and headers: the `Authorization`
 * header with the `Bearer` (RFC 6750 §2.1) or `DPoP` (RFC 9449 §7.1) scheme (or the header
 * `bearer_token_header_name` names, which may also carry the bare token), or the
 * `access_token` query parameter (§2.3), as Kong's `bearer_token_param_type` allows. The body
 * parameter (§2.2) is openid-connect's to read (src/plugins/openid-connect/authn/bearer-token.ts): it
 * reads whichever body the upstream will get, which another authenticator may have replaced.
 * A malformed presentation is the caller's mistake: 400 `invalid_request`, never a 500.
 */
import { AuthError } from "../../errors.ts";
import { cookieValues } from "../../lib/cookies.ts";

/** Kong's `bearer_token_param_type` values. */
export type BearerParamType = "header" | "query" | "body" | "cookie";

export interface PresentedToken {
  readonly token: string;
  /** `DPoP` only from the `Authorization` header; query, body and cookie tokens are `Bearer`. */
  readonly scheme: "Bearer" | "DPoP";
  readonly source: BearerParamType;
}

export interface ExtractOptions {
  /** Where to look (`bearer_token_param_type`; the body is the plugin's to read, ignored here). */
  readonly paramTypes: readonly BearerParamType[];
  /** Accept the `DPoP` scheme (`proof_of_possession_dpop` is not `off`). */
  readonly dpop: boolean;
  /** The cookie read for `cookie` (Kong's `bearer_token_cookie_name`). */
  readonly cookieName?: string | undefined;
  /** The header read for `header` (lower case; `bearer_token_header_name`); unset: `authorization`. */
  readonly headerName?: string | undefined;
  /** The `Authorization` header already parsed (a remembered `parseAuthorization` of this very value). */
  readonly header?: HeaderToken | undefined;
}

/** What `parseAuthorization` finds in a header: a well-formed token and its scheme. */
export interface HeaderToken {
  readonly token: string;
  readonly scheme: "Bearer" | "DPoP";
}

/** RFC 6750 §2.1 `b64token`. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
/** RFC 9110 `token` (an auth-scheme), then the rest of the field. */
const SCHEME = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(.*)$/s;

const invalid = (description: string) => new AuthError({ error: "invalid_request", description });

/**
 * Parses one `Authorization` field value. Returns `undefined` for other schemes (Basic, ...),
 * which are another auth method's business. Scheme names are case-insensitive (RFC 9110 §11.1).
 */
export function parseAuthorization(value: string | null, options: { readonly dpop: boolean }): HeaderToken | undefined {
  if (value === null) return undefined;
  if (value.trim() === "") throw invalid("the 'Authorization' header is empty");
  const lower = value.toLowerCase();
  // Repeated Authorization fields arrive joined by ", ".
  if (/(^|,)\s*bearer(\s|$)/.test(lower) && /(^|,)\s*dpop(\s|$)/.test(lower)) {
    throw invalid("the access token was sent with both the 'Bearer' and the 'DPoP' scheme");
  }
  const match = SCHEME.exec(value);
  if (!match) {
    if (/^\s*(bearer|dpop)\b/i.test(value)) throw invalid("malformed 'Authorization' header");
    return undefined;
  }
  const scheme = match[1]!.toLowerCase();
  if (scheme !== "bearer" && !(scheme === "dpop" && options.dpop)) return undefined;
  const rest = match[2]!;
  const credentials = /^ +(.*)$/s.exec(rest)?.[1];
  if (credentials === undefined || credentials === "") throw invalid(`the '${scheme === "dpop" ? "DPoP" : "Bearer"}' scheme needs an access token`);
  if (!B64TOKEN.test(credentials)) throw invalid("malformed 'Authorization' header: expected one access token after the scheme");
  return { token: credentials, scheme: scheme === "dpop" ? "DPoP" : "Bearer" };
}

/**
 * Parses the value of a header other than `Authorization` that carries the token: with a scheme
 * as `Authorization` does, or the bare token (as proxies that forward a token in their own header
 * send it). Another scheme there is malformed: the header is the token's alone.
 */
function parseTokenHeader(
  value: string | null,
  name: string,
  options: { readonly dpop: boolean },
): { token: string; scheme: "Bearer" | "DPoP" } | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (trimmed === "") throw invalid(`the '${name}' header is empty`);
  if (B64TOKEN.test(trimmed)) return { token: trimmed, scheme: "Bearer" };
  const parsed = parseAuthorization(trimmed, options);
  if (!parsed) throw invalid(`malformed '${name}' header: expected an access token, with or without the 'Bearer' scheme`);
  return parsed;
}

function queryToken(url: string): string | undefined {
  const q = url.indexOf("?");
  if (q < 0) return undefined;
  const h = url.indexOf("#", q);
  const params = new URLSearchParams(url.slice(q + 1, h < 0 ? undefined : h));
  const values = params.getAll("access_token");
  if (values.length === 0) return undefined;
  if (values.length > 1) throw invalid("'access_token' appears more than once in the query");
  return values[0]!;
}

/**
 * The token the caller presents, or `undefined` when there is none (the plugin answers 401
 * without an error code, RFC 6750 §3.1). More than one method at once is `invalid_request`
 * (RFC 6750 §2).
 */
export function findBearerToken(request: Request, options: ExtractOptions): PresentedToken | undefined {
  const found: PresentedToken[] = [];
  if (options.paramTypes.includes("header")) {
    const name = options.headerName;
    const parsed =
      options.header ??
      (name === undefined || name === "authorization"
        ? parseAuthorization(request.headers.get("authorization"), options)
        : parseTokenHeader(request.headers.get(name), name, options));
    if (parsed) found.push({ token: parsed.token, scheme: parsed.scheme, source: "header" });
  }
  if (options.paramTypes.includes("query")) {
    const token = queryToken(request.url);
    if (token !== undefined) found.push({ token, scheme: "Bearer", source: "query" });
  }
  if (options.paramTypes.includes("cookie") && options.cookieName !== undefined) {
    const values = cookieValues(request.headers.get("cookie"), options.cookieName);
    if (values.length > 1) throw invalid(`the cookie '${options.cookieName}' appears more than once`);
    if (values[0] !== undefined) found.push({ token: values[0], scheme: "Bearer", source: "cookie" });
  }
  if (found.length > 1) throw invalid("the access token was sent with more than one method");
  const presented = found[0];
  // A header's token passed the same test in parseAuthorization.
  if (presented && presented.source !== "header" && (presented.token === "" || !B64TOKEN.test(presented.token)))
    throw invalid(`malformed access token in the ${presented.source}`);
  return presented;
}

/**
 * RFC 9449 §7.2: a DPoP-bound token under the `Bearer` scheme is `invalid_token`. For callers
 * that look at the binding before (or without) a DPoP policy, e.g. when DPoP is `off`.
 */
export function assertSchemeFitsBinding(presented: PresentedToken, claims: Readonly<Record<string, unknown>>): void {
  const cnf = claims.cnf;
  const bound = !!cnf && typeof cnf === "object" && typeof (cnf as Record<string, unknown>).jkt === "string";
  if (bound && presented.scheme === "Bearer") {
    throw new AuthError({ error: "invalid_token", description: "a dpop-bound access token must be sent with the 'DPoP' scheme" });
  }
}
