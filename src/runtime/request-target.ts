/**
 * Guards the request URL the listeners build. Bun.serve, Deno.serve and node:http all form
 * `request.url` from the `Host` header and the request target, so a Host such as
 * `evil.example/admin?` would move the path the gateway routes on (and checks DPoP `htu`
 * against) away from the path in the request line. A Host is accepted only when no URL parser
 * can read more than a host and a port out of it (RFC 9110 §7.2, RFC 9112 §3.2: a request
 * with an invalid or repeated Host is a 400).
 */

/** reg-name of DNS-style characters, or an IP literal, then an optional port. */
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::[0-9]{0,5})?$/;

/** True for a usable Host value; `null` (HTTP/1.0 without Host) is left to the listener's default. */
export function isValidHost(host: string | null): boolean {
  return host === null || HOST.test(host);
}

export function badRequest(message: string): Response {
  return new Response(JSON.stringify({ message }), { status: 400, headers: { "content-type": "application/json; charset=utf-8", connection: "close" } });
}
