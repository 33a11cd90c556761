/**
 * Decision mode, beside a proxy that already exists (what Oathkeeper is used for): nginx
 * `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth` or Envoy's HTTP `ext_authz` ask the
 * gateway about a request they are about to proxy. The request is routed by its original
 * method, host and path, the route's plugins run, and the answer is 200 with the headers the
 * upstream would get, or the refusal with its challenge. Nothing is proxied.
 *
 * The front proxy says what the original request was, by one of three conventions:
 * - nginx: `X-Original-URI` (and `X-Original-Method`, `X-Original-Host` or `Host`);
 * - Traefik / Caddy: `X-Forwarded-Uri`, `X-Forwarded-Method`, `X-Forwarded-Host`, `X-Forwarded-Proto`;
 * - Envoy: the original path under the listener's `decision_path_prefix`, method and Host as they are.
 * The decision listener trusts these headers: only the front proxy may reach it.
 */
import type { ConnInfo } from "../runtime/types.ts";

/** Headers that only describe the original request to us; never passed on to the pipeline. */
const CONVENTION = [
  "x-original-uri",
  "x-original-method",
  "x-original-host",
  "x-original-url",
  "x-forwarded-uri",
  "x-forwarded-method",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-forwarded-prefix",
];

const METHOD = /^[A-Z]{1,20}$/;
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::[0-9]{1,5})?$/;

export interface OriginalRequest {
  readonly request: Request;
  readonly conn: ConnInfo;
}

/** The caller's address as the front proxy saw it: `X-Real-IP`, else the first `X-Forwarded-For`. */
function callerAddress(headers: Headers, fallback: string): string {
  const real = headers.get("x-real-ip")?.trim();
  if (real) return real;
  const first = headers.get("x-forwarded-for")?.split(",")[0]?.trim();
  return first || fallback;
}

/**
 * The original request the front proxy asks about, or a string saying why it cannot be read
 * (the listener answers 400 with it: a misconfigured front proxy, not a caller's fault).
 */
export function originalRequest(raw: Request, conn: ConnInfo, pathPrefix: string): OriginalRequest | string {
  const h = raw.headers;
  let method = raw.method;
  let host = h.get("host") ?? "";
  let uri: string;
  let proto = conn.tls ? "https" : "http";
  const nginxUri = h.get("x-original-uri");
  const forwardedUri = h.get("x-forwarded-uri");
  if (nginxUri !== null) {
    uri = nginxUri;
    method = h.get("x-original-method") ?? "GET";
    host = h.get("x-original-host") ?? host;
    proto = h.get("x-forwarded-proto") ?? proto;
  } else if (forwardedUri !== null) {
    uri = forwardedUri;
    method = h.get("x-forwarded-method") ?? "GET";
    host = h.get("x-forwarded-host") ?? host;
    proto = h.get("x-forwarded-proto") ?? proto;
  } else {
    const url = new URL(raw.url);
    if (!url.pathname.startsWith(pathPrefix))
      return `the path is not under decision_path_prefix "${pathPrefix}" and no X-Original-URI or X-Forwarded-Uri says what the original request was`;
    uri = `/${url.pathname.slice(pathPrefix.length).replace(/^\//, "")}${url.search}`;
  }
  method = method.toUpperCase();
  if (!uri.startsWith("/")) return "the original URI must be in origin form (/path?query)";
  if (!METHOD.test(method)) return "the original method is not a valid method";
  if (!HOST.test(host)) return "the original host is not a valid host";
  if (proto !== "http" && proto !== "https") return "X-Forwarded-Proto must be http or https";
  const headers = new Headers();
  h.forEach((value, name) => {
    if (!CONVENTION.includes(name)) headers.append(name, value);
  });
  headers.set("host", host);
  // The original request's body is not sent by front proxies' auth subrequests.
  const request = new Request(`${proto}://${host}${uri}`, { method: method === "GET" || method === "HEAD" ? method : method, headers });
  return { request, conn: { ...conn, remoteAddress: callerAddress(h, conn.remoteAddress), tls: proto === "https" } };
}

/** Headers the gateway sets on every proxied request; a front proxy has its own. */
const GATEWAY_OWN = new Set([
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "x-forwarded-port",
  "x-forwarded-path",
  "x-real-ip",
  "x-request-id",
  "host",
]);

/**
 * The decision: 200 with every header the plugins added or changed for the upstream
 * (`Authorization: Bearer …`, `X-Consumer-*`, claim headers), for the front proxy to copy.
 */
export function allowResponse(incoming: Headers, upstream: Headers): Response {
  const out = new Headers({ "cache-control": "no-store" });
  upstream.forEach((value, name) => {
    if (GATEWAY_OWN.has(name)) return;
    if (incoming.get(name) !== value) out.append(name, value);
  });
  return new Response(null, { status: 200, headers: out });
}
