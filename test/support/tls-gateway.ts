/**
 * The listener suites' shared setup: a gateway with the plain proxy listener and the mTLS
 * listener (`proxy_tls_listen` with the dev certificates from `make certs`), the two listeners
 * as raw-socket targets so one table of requests goes to both, and a file-wide echo upstream.
 */
import { afterAll, beforeAll } from "bun:test";
import { join } from "node:path";
import { cert, ensureCerts } from "./certs.ts";
import type { GatewayProcess } from "./gateway-process.ts";
import { live } from "./live.ts";
import type { RawTarget } from "./raw-http.ts";
import { startEchoUpstream, type EchoUpstream } from "./upstream.ts";

export interface TlsServerOptions {
  /** More `[server]` lines (shutdown_timeout, escaped_slashes, ...). */
  readonly server?: string;
  /** More `[server.tls]` lines (require_client_cert, ...). */
  readonly tls?: string;
}

/**
 * The `[server]` and `[server.tls]` tables: both proxy listeners and the admin API on the
 * gateway's free ports, the dev server certificate, client certificates checked against the dev CA.
 */
export function tlsServerConfig(options: TlsServerOptions = {}): string {
  const certs = ensureCerts();
  return `[server]
proxy_listen = "127.0.0.1:{{proxy}}"
proxy_tls_listen = "127.0.0.1:{{proxy_tls}}"
admin_listen = "127.0.0.1:{{admin}}"
${options.server ?? ""}

[server.tls]
cert = "${join(certs, "gateway.crt")}"
key = "${join(certs, "gateway.key")}"
client_ca = "${join(certs, "ca.crt")}"
${options.tls ?? ""}
`;
}

/**
 * The three gateways whose listeners the listener suites hold to one behaviour: the binary
 * (Bun.serve plain listener), the binary with `strict_listener = true` (node:http everywhere) and
 * Deno (node:http everywhere). `bunServe` marks the one whose plain listener offers no hook for a
 * limit (docs/security.md).
 */
export const LISTENER_GATEWAYS = [
  { name: "binary", runtime: "binary", server: "", bunServe: true },
  { name: "binary with strict_listener", runtime: "binary", server: "strict_listener = true", bunServe: false },
  { name: "deno", runtime: "deno", server: "", bunServe: false },
] as const;

export type ListenerName = "plain" | "mtls";

/** The mTLS listener as a raw-socket target, presenting the dev client certificate. */
export function mtlsTarget(gateway: GatewayProcess): RawTarget {
  return { port: gateway.ports.proxyTls, tls: { ca: cert("ca.crt"), cert: cert("client.crt"), key: cert("client.key") } };
}

/** Both proxy listeners of `gateway` as raw-socket targets. */
export function listenerTargets(gateway: GatewayProcess): Record<ListenerName, RawTarget> {
  return { plain: { port: gateway.ports.proxy }, mtls: mtlsTarget(gateway) };
}

/** A service "echo" on the upstream's /anything and a route "echo" for every path to it. */
export function echoServiceToml(upstreamUrl: string): string {
  return `[[services]]
name = "echo"
url = "${upstreamUrl}/anything"

[[routes]]
name = "echo"
service = "echo"
paths = ["/"]
`;
}

/**
 * An echo upstream for the whole test file: started before its first suite, stopped after the
 * last. The returned object reads through to the running upstream, so it can be a file constant.
 */
export function echoUpstreamForFile(): EchoUpstream {
  let running: EchoUpstream | undefined;
  beforeAll(() => {
    ensureCerts();
    running = startEchoUpstream();
  });
  afterAll(() => running?.stop());
  return live("the echo upstream", () => running);
}
