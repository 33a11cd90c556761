/**
 * Who may talk to the admin API (docs/security.md, "Admin API exposure"). It can reload the
 * config, rotate keys and flush caches, so beyond listening on loopback it checks:
 * - the Host header against `[server] admin_hosts` (DNS rebinding: a page on
 *   `evil.example` whose name now resolves to 127.0.0.1 sends `Host: evil.example`);
 * - for state-changing methods, that `Origin` (when sent) is one of those hosts; and for POST,
 *   the one state-changing method a page may send cross-site without a CORS preflight (which
 *   this API never grants), that it carries a header no such page can add: `Authorization`,
 *   any `X-…` header, or a non-form `Content-Type`;
 * - `[server] admin_token`, when set, as `Authorization: Bearer <token>` (compared in constant
 *   time) on everything but `GET /status` and `GET /status/ready` (load balancers poll them).
 */
import type { MiddlewareHandler } from "hono";
import type { ServerConfig } from "../config/schema.ts";

function hostWithoutPort(host: string): string {
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const colon = host.lastIndexOf(":");
  return colon >= 0 ? host.slice(0, colon) : host;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
const SIMPLE_CONTENT_TYPES = new Set(["application/x-www-form-urlencoded", "multipart/form-data", "text/plain"]);
const UNAUTHENTICATED = new Set(["/status", "/status/ready"]);
const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"];

/** The host names the admin API answers to: `admin_hosts`, or loopback names and its own address. */
function adminHosts(server: ServerConfig): Set<string> {
  if (server.admin_hosts) return new Set(server.admin_hosts.map((h) => h.toLowerCase()));
  const hosts = new Set(LOOPBACK_NAMES);
  const listen = server.admin_listen;
  if (listen !== "off" && listen.hostname !== "0.0.0.0" && listen.hostname !== "::") {
    hosts.add(listen.hostname.includes(":") ? `[${listen.hostname.toLowerCase()}]` : listen.hostname.toLowerCase());
  }
  return hosts;
}

function originHost(origin: string): string | undefined {
  try {
    return new URL(origin).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/** A header a browser page cannot send cross-site without a preflight. */
function hasNonSimpleHeader(headers: Headers): boolean {
  if (headers.has("authorization")) return true;
  const type = headers.get("content-type");
  if (type !== null && !SIMPLE_CONTENT_TYPES.has(type.split(";")[0]!.trim().toLowerCase())) return true;
  for (const name of headers.keys()) if (name.startsWith("x-")) return true;
  return false;
}

async function sameSecret(given: string, expected: string): Promise<boolean> {
  // Digests first: equal lengths, so the comparison reveals neither the token nor its length.
  const enc = new TextEncoder();
  const [a, b] = await Promise.all([crypto.subtle.digest("SHA-256", enc.encode(given)), crypto.subtle.digest("SHA-256", enc.encode(expected))]);
  const x = new Uint8Array(a);
  const y = new Uint8Array(b);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ y[i]!;
  return diff === 0;
}

const refuse = (status: number, message: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ message }), { status, headers: { "content-type": "application/json; charset=utf-8", ...headers } });

export function adminGuard(server: ServerConfig): MiddlewareHandler {
  const hosts = adminHosts(server);
  const token = server.admin_token;
  return async (c, next) => {
    const req = c.req.raw;
    const host = req.headers.get("host");
    if (!host || !hosts.has(hostWithoutPort(host).toLowerCase()))
      return refuse(421, "this admin API does not answer to that Host; see [server] admin_hosts");
    if (token !== undefined && !(req.method === "GET" && UNAUTHENTICATED.has(c.req.path))) {
      const auth = req.headers.get("authorization") ?? "";
      const m = /^Bearer +(\S+)$/i.exec(auth);
      if (!m || !(await sameSecret(m[1]!, token))) return refuse(401, "Unauthorized", { "www-authenticate": 'Bearer realm="admin"' });
    }
    if (!SAFE_METHODS.has(req.method)) {
      const origin = req.headers.get("origin");
      if (origin !== null && origin !== "null" && !hosts.has(originHost(origin) ?? ""))
        return refuse(403, "cross-origin requests to the admin API are refused");
      if (origin === "null") return refuse(403, "cross-origin requests to the admin API are refused");
      if (req.method === "POST" && !hasNonSimpleHeader(req.headers)) {
        return refuse(
          403,
          "a state-changing admin request needs an Authorization header, an X- header or a JSON Content-Type (cross-site request protection)",
        );
      }
    }
    await next();
  };
}
