/**
 * What every listener checks before a request reaches the gateway, so the plain listeners
 * (Bun.serve, Deno.serve) and the mTLS listener (node:http) refuse the same requests alike
 * (docs/security.md, "Both listeners parse alike").
 *
 * Bun.serve, Deno.serve and node:http all form `request.url` from the `Host` header and the
 * request target, so a Host such as `evil.example/admin?` would move the path the gateway
 * routes on (and checks DPoP `htu` against) away from the path in the request line. A Host is
 * accepted only when no URL parser can read more than a host and a port out of it (RFC 9110
 * §7.2, RFC 9112 §3.2: a request with an invalid, missing or repeated Host is a 400).
 */

/** reg-name of DNS-style characters, or an IP literal, then an optional port. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::[0-9]{0,5})?$/;

/** True for a usable Host value. */
export function isValidHost(host: string | null | undefined): host is string {
  return typeof host === "string" && HOST.test(host);
}

const JSON_TYPE = "application/json; charset=utf-8";

export function badRequest(message: string): Response {
  return new Response(JSON.stringify({ message }), { status: 400, headers: { "content-type": JSON_TYPE, connection: "close" } });
}

/**
 * Methods nginx (and so Kong) answers with 405 itself: TRACE/TRACK reflect the caller's
 * headers (cross-site tracing), CONNECT asks for a tunnel. Neither runtime's fetch sends them.
 */
const REFUSED_METHODS = new Set(["TRACE", "TRACK", "CONNECT"]);

/**
 * The checks every listener makes on a parsed request: a 400/405 response, or `undefined`
 * when the request may go on. The runtimes' own parsers already refuse obviously broken
 * framing; these close what they let through differently.
 */
export function edgeRefusal(method: string, headers: Headers): Response | undefined {
  if (REFUSED_METHODS.has(method)) {
    return new Response('{"message":"Method not allowed"}', {
      status: 405,
      headers: { "content-type": JSON_TYPE, allow: "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", connection: "close" },
    });
  }
  if (!isValidHost(headers.get("host"))) return badRequest("missing or invalid Host header");
  // Two Content-Length headers arrive as "5, 5": nginx answers 400, and so do we (RFC 9112 §6.3).
  const length = headers.get("content-length");
  if (length !== null && !/^[0-9]{1,15}$/.test(length)) return badRequest("invalid Content-Length header");
  const coding = headers.get("transfer-encoding");
  // Only `chunked` alone is a framing both parsers agree on (RFC 9112 §6.1); nginx refuses others too.
  if (coding !== null && coding.toLowerCase() !== "chunked") return badRequest("unsupported Transfer-Encoding");
  if (coding !== null && length !== null) return badRequest("both Content-Length and Transfer-Encoding");
  return undefined;
}

/**
 * The authority of an absolute-form request target (`http://host/path`), which RFC 9112 §3.2.2
 * makes the request's host in place of the Host header; `null` for origin-form; `undefined`
 * when the target carries userinfo or no valid authority (a 400).
 */
export function absoluteAuthority(target: string): string | null | undefined {
  if (target.startsWith("/")) return null;
  const m = /^https?:\/\/([^/?#]*)/i.exec(target);
  if (!m) return undefined;
  const authority = m[1]!;
  if (authority.includes("@") || !isValidHost(authority)) return undefined;
  return authority;
}
