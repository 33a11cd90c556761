/** The keep-alive pool of one `[[services]]` entry: its endpoint from `url`, TLS from `tls_verify` and `trusted_certificates`. */
import type { ServerConfig, ServiceConfig } from "../config/schema.ts";
import type { SocketTls } from "../runtime/types.ts";
import { ConnectionPool, type Connect } from "./pool.ts";

export function servicePool(connect: Connect, server: ServerConfig, service: ServiceConfig, trustedCertificates: readonly string[]): ConnectionPool {
  const url = service.url;
  const https = url.protocol === "https:";
  // URL keeps an IPv6 host in brackets; a socket wants the bare address.
  const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const tls: SocketTls | undefined = https ? { ca: trustedCertificates, verify: service.tls_verify } : undefined;
  return new ConnectionPool({ hostname, port: url.port ? Number(url.port) : https ? 443 : 80, ...(tls ? { tls } : {}) }, connect, {
    poolSize: server.upstream_keepalive_pool_size,
    maxRequests: server.upstream_keepalive_max_requests,
    idleTimeoutMs: server.upstream_keepalive_idle_timeout * 1000,
  });
}
