/**
 * The `[server]` keys that harden the edge (docs/security.md): listener limits, header
 * hygiene, path handling and the admin API's exposure. Spread into the server table.
 */
import { z } from "zod";
import { filePath, millis, type SchemaContext } from "./fields.ts";

export const serverHardening = (ctx: SchemaContext) => ({
  client_header_timeout: millis()
    .default(60_000)
    .describe(
      "How long a client may take to send a request's headers, from connect or from the first byte after keep-alive idleness, to send more of a request body, and to take more of a response (ms; nginx's `client_body_timeout` and `send_timeout` too); then the connection is closed. The compiled binary's plain listener (Bun.serve) keeps its own fixed ~10 s header limit and its `keepalive_timeout` idle limit instead, unless `strict_listener` (docs/security.md).",
    )
    .meta({ kong: "nginx `client_header_timeout`" }),
  tls_handshake_timeout: millis()
    .default(10_000)
    .describe("How long a client on `proxy_tls_listen` may take to complete the TLS handshake after connecting (ms).")
    .meta({ kong: "nginx `ssl_handshake_timeout`" }),
  keepalive_timeout: millis()
    .default(75_000)
    .describe(
      "How long an idle keep-alive connection stays open (ms); 0 closes each connection after its response. The compiled binary's plain listener (Bun.serve) rounds it up to whole seconds, at most 255 s (docs/security.md).",
    )
    .meta({ kong: "nginx `keepalive_timeout`" }),
  max_connections: z
    .int()
    .min(1)
    .max(1_000_000)
    .default(10_000)
    .describe(
      "Connections open at once per listener; more are closed on accept. Not on the compiled binary's plain listener (Bun.serve offers no connection hook) unless `strict_listener`: bound it with the process's file descriptor limit (docs/security.md).",
    )
    .meta({ kong: "nginx `worker_connections`" }),
  strict_listener: z
    .boolean()
    .default(false)
    .describe(
      "Serve the proxy listeners (and `decision_listen`) with node:http instead of Bun.serve in the compiled binary: `client_header_timeout` and `max_connections` then hold there, pipelined requests are answered in order and an absolute-form target is routed by its authority, for about 2.3 times the CPU per request. Deno's listeners are always so (docs/security.md).",
    ),
  underscores_in_headers: z
    .boolean()
    .default(false)
    .describe(
      "Forward caller headers whose names contain `_`. Off, as nginx's default: CGI, WSGI and PHP upstreams read `X_User` and `X-User` as one variable, so an underscore name could pass for a header the gateway sets (docs/security.md).",
    )
    .meta({ kong: "nginx `underscores_in_headers`" }),
  escaped_slashes: z
    .enum(["reject", "keep", "unescape"])
    .default("reject")
    .describe(
      "What a `%2F` or `%5C` in the request path does: `reject` answers 400; `keep` routes and forwards it as is; `unescape` turns it into `/` before routing. An upstream that decodes it could otherwise serve another route's path (docs/security.md).",
    )
    .meta({ kong: "Envoy `path_with_escaped_slashes_action`" }),
  admin_hosts: z
    .array(z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)$/, "expected a host name or IP address without port (IPv6 in brackets)"))
    .optional()
    .describe(
      "Host header values the admin API answers to (without port); others get 421. Default: `localhost`, `127.0.0.1`, `[::1]` and the host of `admin_listen`. Stops DNS rebinding (docs/security.md).",
    ),
  admin_token: z
    .string()
    .min(16, "expected at least 16 characters")
    .optional()
    .describe(
      "When set, every admin request but `GET /status` and `GET /status/ready` needs `Authorization: Bearer <admin_token>` (compared in constant time). Use a vault reference, not the token itself.",
    ),
  admin_client_ca: filePath(ctx)
    .optional()
    .describe(
      "PEM CA bundle: when set, the admin API listens with TLS (`[server.tls]` cert and key) and requires a client certificate issued by these CAs.",
    ),
});

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

/** An admin API reachable beyond loopback must authenticate its callers. */
export function checkAdminExposure(
  server: { admin_listen: { hostname: string } | "off"; admin_token?: string | undefined; admin_client_ca?: string | undefined; tls?: unknown },
  ctx: z.RefinementCtx,
): void {
  if (server.admin_client_ca !== undefined && !server.tls) {
    ctx.addIssue({
      code: "custom",
      path: ["admin_client_ca"],
      message: "expected a [server.tls] table with 'cert' and 'key' because 'admin_client_ca' is set (the admin API then listens with TLS)",
    });
  }
  const listen = server.admin_listen;
  if (listen !== "off" && !LOOPBACK.test(listen.hostname) && server.admin_token === undefined && server.admin_client_ca === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["admin_listen"],
      message: `expected 'admin_token' or 'admin_client_ca' because the admin API listens on "${listen.hostname}", beyond loopback (anyone who reaches it could reload the config and rotate keys)`,
    });
  }
}
