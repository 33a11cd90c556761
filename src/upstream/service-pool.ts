/**
 * The keep-alive pool of one `[[services]]` entry: its endpoint from `url` (or, for a service
 * balanced over an `[[upstreams]]`, one target's), TLS from the service's outbound settings
 * (`tls_verify`, `trusted_certificates` + `ca_certificates`, `client_certificate`).
 */
import type { ServerConfig, ServiceConfig } from "../config/schema.ts";
import type { SocketTls } from "../runtime/types.ts";
import { ConnectionPool, type Connect } from "./pool.ts";

export function servicePool(
  connect: Connect,
  server: ServerConfig,
  service: ServiceConfig,
  tls: SocketTls,
  endpoint?: { readonly hostname: string; readonly port: number },
): ConnectionPool {
  const url = service.url;
  const https = url.protocol === "https:";
  // URL keeps an IPv6 host in brackets; a socket wants the bare address.
  const hostname = endpoint?.hostname ?? (url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname);
  const port = endpoint?.port ?? (url.port ? Number(url.port) : https ? 443 : 80);
  return new ConnectionPool({ hostname, port, ...(https ? { tls } : {}) }, connect, {
    poolSize: server.upstream_keepalive_pool_size,
    maxRequests: server.upstream_keepalive_max_requests,
    idleTimeoutMs: server.upstream_keepalive_idle_timeout * 1000,
  });
}
