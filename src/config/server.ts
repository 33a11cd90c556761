/** The `[server]` table: listeners, TLS, outbound trust, logging. */
import { z } from "zod";
import { parseCidr } from "../lib/ip.ts";
import { filePath, forwardProxyFields, kongTable, listen, listenOrOff, millis, seconds, table, type SchemaContext } from "./fields.ts";
import { checkAdminExposure, serverHardening } from "./server-hardening.ts";

const serverTls = (ctx: SchemaContext) =>
  table({
    cert: filePath(ctx).describe("PEM certificate (chain) served on `proxy_tls_listen`.").meta({ kong: "kong.conf `ssl_cert`" }),
    key: filePath(ctx).describe("PEM private key of `cert`.").meta({ kong: "kong.conf `ssl_cert_key`" }),
    client_ca: filePath(ctx)
      .optional()
      .describe("PEM CA bundle: when set, `proxy_tls_listen` asks for a client certificate and verifies it against these CAs (mTLS)."),
    require_client_cert: z
      .boolean()
      .default(false)
      .describe("Refuse requests on `proxy_tls_listen` that carry no client certificate valid for `client_ca`."),
  }).describe("Certificate and key of the TLS proxy listener.");

export const serverSchema = (ctx: SchemaContext) =>
  kongTable("server", {
    proxy_listen: listen().prefault("0.0.0.0:8000").describe("Address of the plain HTTP proxy listener.").meta({ kong: "kong.conf `proxy_listen`" }),
    proxy_tls_listen: listen()
      .optional()
      .describe("Address of the HTTPS proxy listener; needs `[server.tls]`.")
      .meta({ kong: "kong.conf `proxy_listen` with `ssl`" }),
    admin_listen: listenOrOff()
      .prefault("127.0.0.1:8001")
      .describe('Address of the admin API, or "off". Keep it on loopback: it can rotate keys and flush caches.')
      .meta({ kong: "kong.conf `admin_listen`" }),
    trusted_ips: z
      .array(z.string().refine((v) => parseCidr(v) !== undefined, 'expected an IP address or a CIDR range (e.g. "10.0.0.0/8", "::1")'))
      .default([])
      .describe(
        "Peers (load balancers, proxies) whose X-Forwarded-* headers, `real_ip_header` and `client_cert_header` are trusted; from any other peer they are removed.",
      )
      .meta({ kong: "kong.conf `trusted_ips`" }),
    real_ip_header: z
      .string()
      .regex(/^[A-Za-z0-9-]+$/, "expected a header name")
      .default("X-Real-IP")
      .describe("Header a trusted peer puts the client's address in (`X-Forwarded-For` for a chain).")
      .meta({ kong: "kong.conf `real_ip_header`" }),
    real_ip_recursive: z
      .boolean()
      .default(false)
      .describe("With a chain in `real_ip_header`: the last address that is not in `trusted_ips`, instead of the last one.")
      .meta({ kong: "kong.conf `real_ip_recursive`" }),
    client_cert_header: z
      .string()
      .regex(/^[A-Za-z0-9-]+$/, "expected a header name")
      .optional()
      .describe(
        "Header in which a trusted TLS-terminating load balancer forwards the client certificate, for `proof_of_possession_mtls` (e.g. `X-Forwarded-Client-Cert`).",
      ),
    client_cert_header_format: z
      .enum(["xfcc", "pem"])
      .default("xfcc")
      .describe(
        "`xfcc`: Envoy's X-Forwarded-Client-Cert (`Cert=` URL-encoded PEM, or `Hash=`); `pem`: a URL-encoded PEM (nginx `$ssl_client_escaped_cert`).",
      ),
    decision_listen: listen()
      .optional()
      .describe(
        "Address of the decision listener (docs/decision-mode.md): nginx `auth_request`, Traefik/Caddy forward auth or Envoy `ext_authz` ask it about a request; it answers 200 with the upstream's headers or the refusal, and proxies nothing. It trusts X-Original-*/X-Forwarded-* headers: only the front proxy may reach it.",
      ),
    decision_path_prefix: z
      .string()
      .regex(/^\//, "expected a path starting with '/'")
      .default("/")
      .describe("Envoy `ext_authz` convention: the original path is the request path under this prefix."),
    trusted_certificates: z
      .array(filePath(ctx))
      .default([])
      .describe("PEM files with CAs trusted for outbound TLS (to IdPs and upstreams), on top of the system roots.")
      .meta({ kong: "kong.conf `lua_ssl_trusted_certificate`" }),
    // Defaults for every plugin that calls an IdP (Kong sets them per plugin only).
    ...forwardProxyFields(),
    tls: serverTls(ctx).optional(),
    upstream_keepalive_pool_size: z
      .int()
      .min(0)
      .max(100_000)
      .default(60)
      .describe("Idle keep-alive connections kept per upstream endpoint (host, port, TLS settings) and process; 0 disables keep-alive.")
      .meta({ kong: "kong.conf `upstream_keepalive_pool_size`" }),
    upstream_keepalive_max_requests: z
      .int()
      .min(0)
      .max(1_000_000_000)
      .default(10_000)
      .describe("Requests one upstream connection carries before it is closed; 0: no limit.")
      .meta({ kong: "kong.conf `upstream_keepalive_max_requests`" }),
    upstream_keepalive_idle_timeout: seconds(24 * 3600)
      .default(60)
      .describe("Seconds an idle upstream keep-alive connection is kept; 0: no limit.")
      .meta({ kong: "kong.conf `upstream_keepalive_idle_timeout`" }),
    log_level: z
      .enum(["debug", "info", "warn", "error"])
      .default("info")
      .describe("Lowest level written to the log.")
      .meta({ kong: "kong.conf `log_level`" }),
    access_log: z.boolean().default(true).describe("Write one JSON line per proxied request."),
    watch: z.boolean().default(false).describe("Reload gateway.toml when the file changes (as SIGHUP and POST /config/reload do)."),
    shutdown_timeout: millis()
      .default(10_000)
      .describe("On SIGTERM/SIGINT, how long in-flight requests may take to finish before connections are closed (ms)."),
    workers: z
      .int()
      .min(1)
      .max(64)
      .default(1)
      .describe(
        "Worker processes sharing the proxy ports (Linux SO_REUSEPORT), each with its own caches; worker 0 serves the admin API. Changing it needs a restart.",
      )
      .meta({ kong: "kong.conf `nginx_worker_processes` (Kong's default is `auto`)" }),
    ...serverHardening(ctx),
  }).superRefine((server, ctx) => {
    checkAdminExposure(server, ctx);
    if (server.proxy_tls_listen && !server.tls) {
      ctx.addIssue({
        code: "custom",
        path: ["tls"],
        message: "expected a [server.tls] table with 'cert' and 'key' because 'proxy_tls_listen' is set",
      });
    }
  });
