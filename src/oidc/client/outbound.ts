/**
 * Calls from the gateway to an identity provider: every one has a timeout, uses the configured
 * trust store, and fails as an `IdpError` that says which endpoint failed and how, never with
 * the IdP's body (which may echo what we sent).
 */
import { IdpError } from "../../errors.ts";
import type { FetchLike, Runtime } from "../../runtime/types.ts";
import { readUpTo } from "../../lib/bounded-body.ts";
import { concatBytes } from "../../lib/bytes.ts";
import { proxyFor, type ForwardProxy } from "./forward-proxy.ts";

export interface OutboundOptions {
  /** Time for the whole exchange: connect, headers and body (ms). */
  readonly timeout: number;
  /** `ssl_verify`: verify the IdP's certificate. */
  readonly sslVerify: boolean;
  /** Client certificate and key (PEM) for mutual TLS (`tls_client_auth`). */
  readonly clientCertificate?: { readonly cert: string; readonly key: string };
  /** `http_proxy` / `https_proxy` / `no_proxy`: forward proxies for these calls. */
  readonly proxy?: ForwardProxy | undefined;
}

/** Largest discovery document or JWKS we read; a bigger body is a bad response, not a memory bill. */
export const MAX_METADATA_BYTES = 1024 * 1024;

/** The request URL without its query: safe to log (a query could carry credentials). */
export function endpointName(input: string | URL | Request): string {
  const href = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
  const q = href.search(/[?#]/);
  return q < 0 ? href : href.slice(0, q);
}

function isTimeout(error: unknown): boolean {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const name = (e as { name?: unknown }).name;
    if (name === "TimeoutError") return true;
  }
  return false;
}

/** A network failure as an `IdpError`: `timeout` (504) or `unreachable` (503). */
export function networkError(error: unknown, endpoint: string, timeout: number): IdpError {
  if (error instanceof IdpError) return error;
  if (isTimeout(error)) return new IdpError("timeout", `${endpoint} did not answer within ${timeout} ms`, { cause: error });
  const code = (error as { code?: unknown })?.code;
  // A forward proxy's URL may carry credentials: a message that names it keeps them out.
  const why = typeof code === "string" ? code : ((error as Error)?.message ?? "network error").toLowerCase().replace(/\/\/[^\s/@]*@/g, "//***@");
  return new IdpError("unreachable", `${endpoint} is unreachable (${why})`, { cause: error });
}

/**
 * A fetch for one IdP: the runtime's outbound client (trusted CAs, `ssl_verify`), a timeout on
 * every call, and network failures turned into `IdpError`s (they pass unchanged through
 * oauth4webapi, which awaits the fetch it is given).
 */
/** What a call to the IdP needs of the gateway: the runtime's HTTP client and `[server] trusted_certificates`. */
export interface OutboundContext {
  readonly runtime: Runtime;
  /** PEM text of `[server] trusted_certificates`. */
  readonly trustedCertificates: readonly string[];
}

export function createIdpFetch(ctx: OutboundContext, options: OutboundOptions): FetchLike {
  const tls = { ca: ctx.trustedCertificates, verify: options.sslVerify, ...options.clientCertificate };
  const direct = ctx.runtime.createFetch(tls);
  // One client per proxy URL, made on first use (Deno binds a proxy to its HTTP client).
  const viaProxy = new Map<string, FetchLike>();
  const clientFor = (input: string | URL | Request): FetchLike => {
    const proxy = proxyFor(typeof input === "string" ? input : input instanceof URL ? input.href : input.url, options.proxy);
    if (!proxy) return direct;
    let client = viaProxy.get(proxy);
    if (!client) viaProxy.set(proxy, (client = ctx.runtime.createFetch({ ...tls, proxy })));
    return client;
  };
  return async (input, init) => {
    const base = clientFor(input);
    const timeout = AbortSignal.timeout(options.timeout);
    const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    try {
      return await base(input, { ...init, signal });
    } catch (error) {
      throw networkError(error, endpointName(input), options.timeout);
    }
  };
}

/**
 * GET a JSON object from the IdP (discovery, JWKS): 200 only, redirects refused, size bounded.
 * `what` names the document in errors, e.g. "discovery document".
 */
export async function getJson(
  fetch: FetchLike,
  url: string,
  what: string,
  timeout: number,
): Promise<{ json: Record<string, unknown>; text: string }> {
  const response = await fetch(url, { headers: { accept: "application/json" }, redirect: "manual" });
  const endpoint = endpointName(url);
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => {});
    throw new IdpError(
      response.status >= 500 || response.status < 400 ? "bad_response" : "misconfigured",
      `${what} at ${endpoint} answered HTTP ${response.status}`,
    );
  }
  let text: string;
  try {
    text = await readBounded(response, MAX_METADATA_BYTES);
  } catch (error) {
    if (error instanceof IdpError) throw new IdpError(error.failure, `${what} at ${endpoint}: ${error.detail}`);
    throw networkError(error, endpoint, timeout);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new IdpError("bad_response", `${what} at ${endpoint} is not JSON`);
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) throw new IdpError("bad_response", `${what} at ${endpoint} is not a JSON object`);
  return { json: json as Record<string, unknown>, text };
}

async function readBounded(response: Response, max: number): Promise<string> {
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > max) {
    await response.body?.cancel().catch(() => {});
    throw new IdpError("bad_response", `body larger than ${max} bytes`);
  }
  if (!response.body) return "";
  const reader = response.body.getReader();
  const read = await readUpTo(reader, max);
  if (!read.complete) {
    await reader.cancel().catch(() => {});
    throw new IdpError("bad_response", `body larger than ${max} bytes`);
  }
  return new TextDecoder().decode(concatBytes(read.chunks, read.size));
}
