/**
 * The access token a caller presents, where `bearer_token_param_type` allows (header, query,
 * body, cookie `bearer_token_cookie_name`; the header is `Authorization` or
 * `bearer_token_header_name`), and `hide_credentials` for it, for `bearer` and `introspection`
 * alike. Header, query and cookie are read by `findBearerToken`
 * (src/oidc/bearer-request.ts). The body is read here, because another authenticator may
 * already have consumed it (client credentials in a form): we read whichever body the upstream
 * will get, and hand it on unchanged, or without `access_token` when hiding.
 */
import { AuthError } from "../../../errors.ts";
import type { RequestContext } from "../../../gateway/context.ts";
import { readUpTo, replayStream, streamOf } from "../../../lib/bounded-body.ts";
import { concatBytes } from "../../../lib/bytes.ts";
import { withoutCookie } from "../../../lib/cookies.ts";
import { findBearerToken, type BearerParamType, type HeaderToken, type PresentedToken } from "../../../oidc/resource/bearer-request.ts";
import { formDecode, MAX_CREDENTIALS_BODY } from "./credentials.ts";
import { bodyKind } from "../../../lib/body-kind.ts";
import type { ProofOfPossession } from "./proof-of-possession.ts";

/** Where a caller's token may be (Kong's names, and `bearer_token_header_name`). */
export interface PresentationConfig {
  readonly bearer_token_param_type: readonly BearerParamType[];
  readonly bearer_token_cookie_name?: string | undefined;
  readonly bearer_token_header_name?: string | undefined;
}

const DPOP_SCHEME = /^\s*dpop(\s|$)/i;

/** RFC 6750 §2.1 `b64token`. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

const invalid = (description: string) => new AuthError({ error: "invalid_request", description });

/**
 * The body the upstream will receive, read up to `MAX_CREDENTIALS_BODY` bytes without losing
 * it: the raw body is read from a clone, a body another authenticator already replaced is read
 * and replaced again by what was read. A longer body is not parsed (`undefined`).
 */
async function peekBody(c: RequestContext): Promise<Uint8Array | undefined> {
  const raw = c.req.raw;
  const replaced = c.var.upstreamBody;
  const source = replaced !== undefined ? replaced : raw.bodyUsed ? null : raw.clone().body;
  if (!source) return undefined;
  const reader = source.getReader();
  const { chunks, size, complete } = await readUpTo(reader, MAX_CREDENTIALS_BODY);
  if (complete) {
    const bytes = concatBytes(chunks, size);
    if (replaced !== undefined) c.set("upstreamBody", streamOf(bytes));
    return bytes;
  }
  if (replaced !== undefined) {
    c.set("upstreamBody", replayStream(chunks, reader));
  } else {
    await reader.cancel(); // our clone only; the original streams on
  }
  return undefined;
}

/** `access_token` of a form or JSON body (RFC 6750 §2.2; JSON as Kong also reads it). */
async function bodyToken(c: RequestContext): Promise<string | undefined> {
  const raw = c.req.raw;
  if (raw.method === "GET" || raw.method === "HEAD") return undefined;
  const kind = bodyKind(raw.headers.get("content-type"));
  if (!kind) return undefined;
  if (Number(raw.headers.get("content-length") ?? "0") > MAX_CREDENTIALS_BODY) return undefined;
  const bytes = await peekBody(c);
  if (!bytes) return undefined;
  const text = new TextDecoder().decode(bytes);
  if (kind === "json") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return undefined; // not ours to judge: the upstream gets the body as sent
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return undefined;
    const value = (parsed as Record<string, unknown>).access_token;
    if (value === undefined) return undefined;
    if (typeof value !== "string") throw invalid("'access_token' in the body must be a string");
    return value;
  }
  const values = new URLSearchParams(text).getAll("access_token");
  if (values.length === 0) return undefined;
  if (values.length > 1) throw invalid("'access_token' appears more than once in the body");
  return values[0]!;
}

/**
 * The presented token, or `undefined` when there is none. Throws `AuthError` (`invalid_request`)
 * for a malformed presentation or more than one method at once (RFC 6750 §2: "MUST NOT use more
 * than one method"). Where `body` is allowed the body is read even when the header or query
 * holds a token: a second token there is refused, not forwarded to the upstream unhidden.
 */
export async function presentedToken(
  c: RequestContext,
  paramTypes: readonly BearerParamType[],
  dpop: boolean,
  where: { readonly cookieName?: string | undefined; readonly headerName?: string | undefined } = {},
  header?: HeaderToken,
): Promise<PresentedToken | undefined> {
  const found = findBearerToken(c.req.raw, { paramTypes, dpop, ...where, header });
  if (!paramTypes.includes("body")) return found;
  const token = await bodyToken(c);
  if (token === undefined) return found;
  if (found) throw invalid("the access token was sent with more than one method");
  if (token === "" || !B64TOKEN.test(token)) throw invalid("malformed access token in the body");
  return { token, scheme: "Bearer", source: "body" };
}

/**
 * The token a caller presents under `config`, as `bearer` and `introspection` both read it; a
 * malformed presentation is refused with the challenge of the scheme the caller tried. `header`:
 * the token header already parsed (bearer remembers the parse of a header it has seen).
 */
export async function presentedTokenOf(
  c: RequestContext,
  config: PresentationConfig,
  pop: ProofOfPossession,
  header?: HeaderToken,
): Promise<PresentedToken | undefined> {
  const headerName = config.bearer_token_header_name?.toLowerCase();
  try {
    return await presentedToken(
      c,
      config.bearer_token_param_type,
      pop.dpop !== "off",
      { cookieName: config.bearer_token_cookie_name, headerName },
      header,
    );
  } catch (error) {
    if (!(error instanceof AuthError)) throw error;
    const tried = c.req.raw.headers.get(headerName ?? "authorization") ?? "";
    throw error.withChallenges(pop.challengesFor(DPOP_SCHEME.test(tried) ? "DPoP" : "Bearer"));
  }
}

/** Whether a raw `name=value` pair is `access_token` (names compared form-decoded, as they were read). */
function isTokenPair(pair: string): boolean {
  const eq = pair.indexOf("=");
  return formDecode(eq < 0 ? pair : pair.slice(0, eq)) === "access_token";
}

/** The query string without `access_token` (the rest as sent). */
function withoutToken(search: string): string {
  const kept =
    search.length > 1
      ? search
          .slice(1)
          .split("&")
          .filter((pair) => !isTokenPair(pair))
      : [];
  return kept.length ? `?${kept.join("&")}` : "";
}

/** `hide_credentials`: the upstream never sees the token where the caller put it. */
export async function hideBearerToken(c: RequestContext, presented: PresentedToken, config: PresentationConfig): Promise<void> {
  if (presented.source === "header") {
    c.var.upstreamHeaders.delete(config.bearer_token_header_name?.toLowerCase() ?? "authorization");
    return;
  }
  if (presented.source === "cookie") {
    const cookie = c.var.upstreamHeaders.get("cookie");
    if (cookie === null) return;
    // A cookie token is read only with a cookie name (schema.ts).
    const rest = withoutCookie(cookie, config.bearer_token_cookie_name!);
    if (rest === "") c.var.upstreamHeaders.delete("cookie");
    else c.var.upstreamHeaders.set("cookie", rest);
    return;
  }
  if (presented.source === "query") {
    const url = c.req.raw.url;
    const q = url.indexOf("?");
    const hash = url.indexOf("#", q);
    c.set("upstreamSearch", withoutToken(url.slice(q, hash < 0 ? undefined : hash)));
    return;
  }
  const bytes = await peekBody(c);
  if (!bytes) return;
  const text = new TextDecoder().decode(bytes);
  let rest: string;
  if (bodyKind(c.req.raw.headers.get("content-type")) === "json") {
    const o = JSON.parse(text) as Record<string, unknown>;
    delete o.access_token;
    rest = JSON.stringify(o);
  } else {
    rest = text
      .split("&")
      .filter((pair) => !isTokenPair(pair))
      .join("&");
  }
  const out = new TextEncoder().encode(rest);
  c.set("upstreamBody", streamOf(out));
  c.var.upstreamHeaders.set("content-length", String(out.byteLength));
}
