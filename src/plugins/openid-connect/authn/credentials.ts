/**
 * Reading a caller's client credentials, as `client_credentials_param_type` allows: HTTP Basic
 * (RFC 7617, with RFC 6749 Appendix B form-decoding of id and secret), query parameters, or
 * `client_id`/`client_secret` in a form or JSON body. Malformed Basic credentials are a 401,
 * never a 500; credentials that are absent are "not mine" (another authenticator may claim the
 * request). A user's `username`/`password` (`password_param_type`) are read the same way, with
 * `USER_CREDENTIALS` names.
 */
import { AuthError, type Challenge } from "../../../errors.ts";
import type { RequestContext } from "../../../gateway/context.ts";
import { readUpTo, replayStream, streamOf } from "../../../lib/bounded-body.ts";
import { concatBytes } from "../../../lib/bytes.ts";
import type { ClientCredentials } from "../../../oidc/client/token-endpoint.ts";
import type { ParamType } from "../schema.ts";
import { bodyKind } from "../../../lib/body-kind.ts";

export interface FoundCredentials extends ClientCredentials {
  readonly source: ParamType;
}

/** The parameter names of an id and its secret in a query or body. */
export interface CredentialNames {
  readonly id: string;
  readonly secret: string;
}

export const CLIENT_CREDENTIALS: CredentialNames = { id: "client_id", secret: "client_secret" };
export const USER_CREDENTIALS: CredentialNames = { id: "username", secret: "password" };

/** Longest Authorization header we parse for credentials. */
const MAX_CREDENTIALS_HEADER = 8 * 1024;
/** Longest body we read for credentials (a form with an id and a secret is tiny); longer ones stream on unread. */
export const MAX_CREDENTIALS_BODY = 64 * 1024;

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });

/** RFC 6749 Appendix B: `application/x-www-form-urlencoded` decoding ("+" is a space). */
export function formDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value.replace(/\+/g, " "));
  } catch {
    return undefined;
  }
}

/**
 * The credentials of a `Basic` Authorization header; `undefined` for another scheme (not ours),
 * `"malformed"` for a Basic header we cannot read (bad base64, not UTF-8, no colon, empty id or
 * secret, undecodable percent-escapes).
 */
export function parseBasic(header: string): ClientCredentials | "malformed" | undefined {
  const space = header.indexOf(" ");
  const scheme = space < 0 ? header : header.slice(0, space);
  if (scheme.toLowerCase() !== "basic") return undefined;
  if (header.length > MAX_CREDENTIALS_HEADER) return "malformed";
  const token = header.slice(space + 1).trim();
  if (space < 0 || !token || token.length % 4 === 1 || !BASE64.test(token)) return "malformed";
  let text: string;
  try {
    const binary = atob(token);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    text = fatalUtf8.decode(bytes);
  } catch {
    return "malformed";
  }
  const colon = text.indexOf(":");
  if (colon <= 0) return "malformed";
  const clientId = formDecode(text.slice(0, colon));
  const clientSecret = formDecode(text.slice(colon + 1));
  if (!clientId || !clientSecret) return "malformed";
  return { clientId, clientSecret };
}

/** Raw `name=value` pairs of a query string, kept as sent (so untouched ones are forwarded byte for byte). */
function queryPairs(search: string): string[] {
  return search.length > 1 ? search.slice(1).split("&") : [];
}

function pairName(pair: string): string | undefined {
  const eq = pair.indexOf("=");
  return formDecode(eq < 0 ? pair : pair.slice(0, eq));
}

function pairValue(pair: string): string | undefined {
  const eq = pair.indexOf("=");
  return eq < 0 ? "" : formDecode(pair.slice(eq + 1));
}

function fromParams(get: (name: string) => string | undefined, source: ParamType, names: CredentialNames): FoundCredentials | undefined {
  const clientId = get(names.id);
  const clientSecret = get(names.secret);
  if (!clientId || !clientSecret) return undefined;
  return { clientId, clientSecret, source };
}

function fromQuery(search: string, names: CredentialNames): FoundCredentials | undefined {
  // Cheap test first (names may also arrive percent-encoded past their first letters).
  if (!search.includes(names.id.slice(0, 4)) && !search.includes(names.secret.slice(0, 4))) return undefined;
  const values = new Map<string, string>();
  for (const pair of queryPairs(search)) {
    const name = pairName(pair);
    if ((name === names.id || name === names.secret) && !values.has(name)) {
      const value = pairValue(pair);
      if (value !== undefined) values.set(name, value);
    }
  }
  return fromParams((n) => values.get(n), "query", names);
}

/** The query string without `client_id` and `client_secret` (or the given names; the rest as sent). */
export function withoutCredentials(search: string, names: CredentialNames = CLIENT_CREDENTIALS): string {
  const kept = queryPairs(search).filter((pair) => {
    const name = pairName(pair);
    return name !== names.id && name !== names.secret;
  });
  return kept.length ? `?${kept.join("&")}` : "";
}

/**
 * Reads up to `MAX_CREDENTIALS_BODY` bytes. A longer body is not parsed: the stream handed on
 * replays what was read, then the rest, so the upstream still gets all of it.
 */
async function readBody(body: ReadableStream<Uint8Array>): Promise<{ bytes: Uint8Array; text: string } | { stream: ReadableStream<Uint8Array> }> {
  const reader = body.getReader();
  const { chunks, size, complete } = await readUpTo(reader, MAX_CREDENTIALS_BODY);
  if (!complete) return { stream: replayStream(chunks, reader) };
  const bytes = concatBytes(chunks, size);
  return { bytes, text: new TextDecoder().decode(bytes) };
}

/**
 * Credentials in a form or JSON body. The body is consumed, so it is handed on to the upstream
 * through `upstreamBody` (without the credentials when `hide` is set). A body another
 * authenticator already read is read again from `upstreamBody`.
 */
async function fromBody(c: RequestContext, hide: boolean, names: CredentialNames): Promise<FoundCredentials | undefined> {
  const raw = c.req.raw;
  const kind = bodyKind(raw.headers.get("content-type"));
  const body = c.var.upstreamBody !== undefined ? c.var.upstreamBody : raw.body;
  if (!kind || !body || raw.method === "GET" || raw.method === "HEAD") return undefined;
  const declared = Number(raw.headers.get("content-length") ?? "0");
  if (declared > MAX_CREDENTIALS_BODY) return undefined; // a large upload: stream it untouched
  const read = await readBody(body);
  if ("stream" in read) {
    c.set("upstreamBody", read.stream);
    return undefined;
  }
  const text = read.text;
  let found: FoundCredentials | undefined;
  let rest = text;
  if (kind === "form") {
    const params = new URLSearchParams(text);
    found = fromParams((n) => params.get(n) ?? undefined, "body", names);
    if (found && hide)
      rest = text
        .split("&")
        .filter((p) => ![names.id, names.secret].includes(pairName(p) ?? ""))
        .join("&");
  } else {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (json && typeof json === "object" && !Array.isArray(json)) {
      const o = json as Record<string, unknown>;
      found = fromParams((n) => (typeof o[n] === "string" ? (o[n] as string) : undefined), "body", names);
      if (found && hide) {
        delete o[names.id];
        delete o[names.secret];
        rest = JSON.stringify(o);
      }
    }
  }
  if (rest === text) {
    c.set("upstreamBody", streamOf(read.bytes)); // as sent, byte for byte
  } else {
    const bytes = new TextEncoder().encode(rest);
    c.set("upstreamBody", streamOf(bytes));
    c.var.upstreamHeaders.set("content-length", String(bytes.byteLength));
  }
  return found;
}

/**
 * The caller's client credentials from the first place in `types` (Kong's order: header, query,
 * body) that has them. Throws `AuthError` for a malformed Basic header.
 */
export async function readClientCredentials(
  c: RequestContext,
  types: readonly ParamType[],
  options: { hide: boolean; challenges: readonly Challenge[]; names?: CredentialNames },
): Promise<FoundCredentials | undefined> {
  const names = options.names ?? CLIENT_CREDENTIALS;
  const raw = c.req.raw;
  if (types.includes("header")) {
    const header = raw.headers.get("authorization");
    if (header) {
      const basic = parseBasic(header);
      if (basic === "malformed")
        throw new AuthError({ error: "invalid_client", description: "the basic credentials are malformed", challenges: options.challenges });
      if (basic) return { ...basic, source: "header" };
    }
  }
  if (types.includes("query")) {
    const q = raw.url.indexOf("?");
    if (q >= 0) {
      const hash = raw.url.indexOf("#", q);
      const found = fromQuery(raw.url.slice(q, hash < 0 ? undefined : hash), names);
      if (found) return found;
    }
  }
  if (types.includes("body")) return fromBody(c, options.hide, names);
  return undefined;
}

/** `hide_credentials`: the upstream never sees what the caller authenticated with. */
export function hideCredentials(c: RequestContext, found: FoundCredentials, names: CredentialNames = CLIENT_CREDENTIALS): void {
  if (found.source === "header") {
    c.var.upstreamHeaders.delete("authorization");
  } else if (found.source === "query") {
    const raw = c.req.raw.url;
    const q = raw.indexOf("?");
    const hash = raw.indexOf("#", q);
    c.set("upstreamSearch", withoutCredentials(raw.slice(q, hash < 0 ? undefined : hash), names));
  }
  // body: removed while reading it (fromBody), the only moment we hold it.
}
