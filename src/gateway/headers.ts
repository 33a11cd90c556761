/**
 * Header hygiene at the proxy. Hop-by-hop headers belong to one connection (RFC 9110 §7.6.1)
 * and identity headers are ours to set: a caller must not be able to claim an address, a
 * protocol or a client certificate it does not have.
 */

const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"];

/**
 * Caller-supplied headers that upstreams and frameworks commonly trust as set by a proxy in
 * front of them: client addresses, client certificates and their verification, and URL or
 * method rewrites (`X-Original-URL: /admin` on a public route is a known bypass). Removed,
 * never trusted. `x-forwarded-*` and `x-ssl-client-*` go by prefix.
 */
const IDENTITY = [
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
  "x-original-url",
  "x-rewrite-url",
  "x-original-uri",
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
];
const IDENTITY_PREFIXES = ["x-forwarded-", "x-ssl-client"];

const REQUEST_DROP = new Set([...HOP_BY_HOP, ...IDENTITY, "host"]);
const RESPONSE_DROP = new Set(HOP_BY_HOP);

/** Header names listed in `Connection` (RFC 9110 §7.6.1): hop-by-hop too. */
function connectionTokens(headers: Headers): string[] {
  const value = headers.get("connection");
  if (!value) return [];
  return value.split(",").map((t) => t.trim().toLowerCase()).filter(Boolean);
}

export interface ForwardedFacts {
  readonly remoteAddress: string;
  readonly protocol: "http" | "https";
  readonly host: string;
  readonly port: number;
  readonly path: string;
  readonly requestId: string;
}

/** The headers the upstream receives, before plugins edit them. */
export function upstreamRequestHeaders(incoming: Headers, facts: ForwardedFacts): Headers {
  const out = new Headers();
  const listed = connectionTokens(incoming);
  incoming.forEach((value, name) => {
    if (REQUEST_DROP.has(name) || (listed.length && listed.includes(name)) || IDENTITY_PREFIXES.some((p) => name.startsWith(p))) return;
    out.append(name, value);
  });
  // Overwritten, never appended: we trust no proxy in front of us.
  out.set("x-forwarded-for", facts.remoteAddress);
  out.set("x-real-ip", facts.remoteAddress);
  out.set("x-forwarded-proto", facts.protocol);
  out.set("x-forwarded-host", hostWithoutPort(facts.host));
  out.set("x-forwarded-port", String(facts.port));
  out.set("x-forwarded-path", facts.path);
  out.set("x-request-id", facts.requestId);
  return out;
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

export function hostWithoutPort(host: string): string {
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const colon = host.lastIndexOf(":");
  return colon >= 0 ? host.slice(0, colon) : host;
}

const REQUEST_ID = /^[\x21-\x7e]{1,200}$/;

/** A caller's `X-Request-Id` is kept when it is a sane token; otherwise we make one. */
export function requestIdFrom(headers: Headers): string {
  const given = headers.get("x-request-id");
  return given && REQUEST_ID.test(given) ? given : crypto.randomUUID();
}
