/**
 * Header hygiene at the proxy. Hop-by-hop headers belong to one connection (RFC 9110 §7.6.1)
 * and identity headers are ours to set: a caller must not be able to claim an address, a
 * protocol or a client certificate it does not have.
 */
import { HOP_BY_HOP } from "../lib/hop-by-hop.ts";
import type { HeadLines } from "../upstream/request-head.ts";
import type { ForwardedChain } from "./trusted-proxies.ts";

/**
 * Caller-supplied headers that upstreams and frameworks commonly trust as set by a proxy in
 * front of them: client addresses, client certificates and their verification, the
 * authenticated user as web servers, SSO proxies and cloud load balancers pass it, Kong's
 * consumer headers, and URL or method rewrites (`X-Original-URL: /admin` on a public route is a
 * known bypass). Removed, never trusted; docs/security.md lists them. Names are compared
 * after normalisation (`_` and `.` as `-`), as WSGI, CGI and PHP fold them.
 */
const IDENTITY_HEADERS: readonly string[] = [
  "forwarded",
  "x-real-ip",
  "true-client-ip",
  "x-client-ip",
  "cf-connecting-ip",
  "fastly-client-ip",
  "x-cluster-client-ip",
  "x-original-forwarded-for",
  "client-cert",
  "client-cert-chain",
  "x-client-cert",
  "x-client-verify",
  "x-client-dn",
  "x-client-cert-dn",
  "x-ssl-cert",
  "ssl-client-cert",
  "ssl-client-verify",
  "ssl-client-s-dn",
  "ssl-client-i-dn",
  "remote-user",
  "x-remote-user",
  "auth-user",
  "x-auth-user",
  "x-authenticated-user",
  "x-authenticated-userid",
  "x-authenticated-scope",
  "x-authenticated-groups",
  "x-consumer-id",
  "x-consumer-custom-id",
  "x-consumer-username",
  "x-consumer-groups",
  "x-credential-identifier",
  "x-credential-username",
  "x-anonymous-consumer",
  "x-anonymous-groups",
  "x-userinfo",
  "x-original-url",
  "x-rewrite-url",
  "x-original-uri",
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
];
const IDENTITY_PREFIXES: readonly string[] = [
  "x-forwarded-",
  "x-ssl-client",
  "x-auth-request-",
  "x-amzn-oidc-",
  "x-goog-authenticated-user-",
  "x-goog-iap-",
  "x-ms-client-principal",
  "cf-access-",
];

const REQUEST_DROP = new Set([...HOP_BY_HOP, ...IDENTITY_HEADERS, "host"]);
const RESPONSE_DROP = new Set(HOP_BY_HOP);

/** A header name as CGI, WSGI and PHP see it: `X_User.Name` and `x-user-name` are one variable. */
export function normalizeHeaderName(name: string): string {
  return name.toLowerCase().replace(/[_.]/g, "-");
}

/**
 * What a route forwards of the caller's headers: names with `_` only when
 * `[server] underscores_in_headers` allows them (nginx's default drops them), and never a
 * name that normalises to one the route's plugins set upstream (`upstream_headers_names`, the
 * token header), which they declare as `upstreamHeaderNames`.
 */
export interface HeaderPolicy {
  readonly underscores: boolean;
  /** Normalised names the route's plugins own. */
  readonly owned: ReadonlySet<string>;
}

export function headerPolicy(underscores: boolean, owned: Iterable<string> = []): HeaderPolicy {
  return { underscores, owned: new Set([...owned].map(normalizeHeaderName)) };
}

const DEFAULT_POLICY = headerPolicy(false);
const SEPARATOR = /[_.]/;

/** Header names listed in `Connection` (RFC 9110 §7.6.1): hop-by-hop too. */
function connectionTokens(headers: Headers): string[] {
  const value = headers.get("connection");
  if (!value) return [];
  return value
    .split(",")
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
}

export interface ForwardedFacts {
  readonly remoteAddress: string;
  readonly protocol: "http" | "https";
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly requestId: string;
  /** What a trusted load balancer sent (`[server] trusted_ips`): passed on, the chain extended. */
  readonly forwarded?: ForwardedChain | undefined;
}

/**
 * Whether a caller's header is forwarded: not when it is hop-by-hop (or listed in `Connection`),
 * an identity header, Host, a name with `_` the policy refuses, or one the route's plugins own.
 */
function forwardable(name: string, policy: HeaderPolicy, listed: readonly string[]): boolean {
  let n = name;
  if (SEPARATOR.test(name)) {
    if (!policy.underscores && name.includes("_")) return false;
    n = normalizeHeaderName(name);
  }
  return !(REQUEST_DROP.has(n) || policy.owned.has(n) || (listed.length && listed.includes(name)) || IDENTITY_PREFIXES.some((p) => n.startsWith(p)));
}

/** The headers the upstream receives, before plugins edit them. */
export function upstreamRequestHeaders(incoming: Headers, facts: ForwardedFacts, policy: HeaderPolicy = DEFAULT_POLICY): Headers {
  const out = new Headers();
  const listed = connectionTokens(incoming);
  incoming.forEach((value, name) => {
    if (forwardable(name, policy, listed)) out.append(name, value);
  });
  // Overwritten, never appended, unless the peer is a trusted load balancer (`trusted_ips`).
  const f = facts.forwarded;
  out.set("x-forwarded-for", f?.for ?? facts.remoteAddress);
  out.set("x-real-ip", facts.remoteAddress);
  out.set("x-forwarded-proto", f?.proto ?? facts.protocol);
  out.set("x-forwarded-host", f?.host ?? hostWithoutPort(facts.host));
  out.set("x-forwarded-port", f?.port ?? String(facts.port));
  out.set("x-forwarded-path", f?.path ?? facts.path);
  out.set("x-request-id", facts.requestId);
  return out;
}

/**
 * The same headers as `upstreamRequestHeaders`, written straight into request-head lines, for a
 * route whose plugins edit nothing: no Headers object filled, set seven times and read again.
 */
export function upstreamHeadLines(incoming: Headers, facts: ForwardedFacts, policy: HeaderPolicy = DEFAULT_POLICY): HeadLines {
  const scan = headScan;
  scan.lines = "";
  scan.contentLength = null;
  scan.listed = connectionTokens(incoming);
  scan.policy = policy;
  incoming.forEach(scanHeader, scan);
  const f = facts.forwarded;
  const lines = `${scan.lines}x-forwarded-for: ${f?.for ?? facts.remoteAddress}\r\nx-real-ip: ${facts.remoteAddress}\r\nx-forwarded-proto: ${f?.proto ?? facts.protocol}\r\nx-forwarded-host: ${f?.host ?? hostWithoutPort(facts.host)}\r\nx-forwarded-port: ${f?.port ?? facts.port}\r\nx-forwarded-path: ${f?.path ?? facts.path}\r\nx-request-id: ${facts.requestId}\r\n`;
  return { lines, contentLength: scan.contentLength };
}

/** `upstreamHeadLines`' state while it walks the caller's headers: one object reused, no closure per request. */
interface HeadScan {
  lines: string;
  contentLength: string | null;
  listed: readonly string[];
  policy: HeaderPolicy;
}
const headScan: HeadScan = { lines: "", contentLength: null, listed: [], policy: DEFAULT_POLICY };

function scanHeader(this: HeadScan, value: string, name: string): void {
  if (name === "content-length") this.contentLength = value;
  else if (name !== "x-request-id" && forwardable(name, this.policy, this.listed)) this.lines += `${name}: ${value}\r\n`;
}

/** The upstream's response headers, minus what belonged to its connection to us. */
export function downstreamResponseHeaders(upstream: Headers): Headers {
  const out = new Headers();
  const listed = connectionTokens(upstream);
  upstream.forEach((value, name) => {
    if (RESPONSE_DROP.has(name) || (listed.length && listed.includes(name)) || name === "set-cookie") return;
    out.append(name, value);
  });
  for (const cookie of upstream.getSetCookie()) out.append("set-cookie", cookie);
  return out;
}

function hostWithoutPort(host: string): string {
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const colon = host.lastIndexOf(":");
  return colon >= 0 ? host.slice(0, colon) : host;
}

const REQUEST_ID = /^[\x21-\x7e]{1,200}$/;

/** A caller's `X-Request-Id` is kept when it is a sane token; otherwise we make one. */
export function requestIdFrom(headers: Headers): string {
  const given = headers.get("x-request-id");
  return given && REQUEST_ID.test(given) ? given : newRequestId();
}

// A request id only has to be unique: a random UUID-shaped prefix per process and a counter
// (crypto.randomUUID() cost ~0.3 us per request on Bun, ~1% of the gateway's CPU under load).
const ID_PREFIX = crypto.randomUUID().slice(0, 24);
let idCounter = 0;
function newRequestId(): string {
  idCounter = (idCounter + 1) % 0x1000000000000;
  return ID_PREFIX + idCounter.toString(16).padStart(12, "0");
}
