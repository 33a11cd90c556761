/**
 * Start a gateway from a loaded config, and reload it: a valid new config is swapped in
 * atomically (requests in flight finish on the old one), unchanged plugins keep their
 * instances and caches, and listeners rebind only when their address or certificates changed.
 */
import type { Hono } from "hono";
import { createAdminApp } from "../admin/app.ts";
import { publishedJwks } from "../keys/admin.ts";
import { openKeyStore } from "../keys/index.ts";
import { loadConfig, type LoadedConfig } from "../config/load.ts";
import { ConfigError } from "../errors.ts";
import type { GatewayConfig, ServiceConfig } from "../config/schema.ts";
import { configWarnings } from "../config/warnings.ts";
import { createLogger, type Logger } from "../log.ts";
import { Metrics } from "../metrics.ts";
import { createShared } from "../lib/shared.ts";
import type { PluginContext } from "../plugins/types.ts";
import { keyMatchesCertificate } from "../runtime/pem-pair.ts";
import type { Listener, ListenerLimits, OutboundTls, SniCertificate, RequestHandler, Runtime, TlsFiles } from "../runtime/types.ts";
import { servicePool } from "../upstream/service-pool.ts";
import { createProber } from "../upstream/balancer/probe.ts";
import { UpstreamPool } from "../upstream/balancer/upstream-pool.ts";
import { VERSION } from "../version.ts";
import { createProxyApp, type ProxyApp } from "./app.ts";
import { originalRequest } from "./decision.ts";
import { errorResponse } from "./error-response.ts";
import { requestIdFrom } from "./headers.ts";
import { splitTarget } from "./path.ts";
import { badRequest } from "../runtime/request-target.ts";
import { pluginRegistry } from "../plugins/registry.ts";
import { readPemFile } from "../config/pem-file.ts";

type ReloadResult = { readonly ok: true } | { readonly ok: false; readonly message: string };

export interface RunningGateway {
  readonly listeners: ReadonlyMap<string, Listener>;
  /** Re-read the config file; an invalid file keeps the running config. */
  reload(): Promise<ReloadResult>;
  /** Stop accepting, let in-flight requests finish (bounded by `shutdown_timeout`), release plugins. */
  stop(): Promise<void>;
}

/** PEM text of `[server] trusted_certificates`, each file named by its key path when unreadable. */
function readTrustedCertificates(runtime: Runtime, config: GatewayConfig): Promise<string[]> {
  return Promise.all(config.server.trusted_certificates.map((f, i) => readPemFile(runtime, f, `server.trusted_certificates[${i}]`)));
}

/**
 * Which client proxies to upstreams: the gateway's own HTTP/1.1 client and pool ("socket"), or
 * the runtime's fetch (`GATEWAY_UPSTREAM_CLIENT=fetch`, kept for comparison in make bench).
 */
function upstreamClient(runtime: Runtime): "socket" | "fetch" {
  return runtime.env("GATEWAY_UPSTREAM_CLIENT") === "fetch" ? "fetch" : "socket";
}

async function serverTls(runtime: Runtime, config: GatewayConfig): Promise<TlsFiles | undefined> {
  const tls = config.server.tls;
  if (!tls) return undefined;
  return {
    cert: await readPemFile(runtime, tls.cert, "server.tls.cert"),
    key: await readPemFile(runtime, tls.key, "server.tls.key"),
    ...(tls.client_ca ? { clientCa: await readPemFile(runtime, tls.client_ca, "server.tls.client_ca") } : {}),
    requireClientCert: tls.require_client_cert,
    ...(config.certificates.length ? { certificates: await sniCertificates(runtime, config) } : {}),
  };
}

/** What `check` verifies beyond the schema: certificate files readable and each key matching its certificate. */
export async function checkCertificateFiles(runtime: Runtime, config: GatewayConfig): Promise<void> {
  await sniCertificates(runtime, config);
  await serviceTls(runtime, config, [], await upstreamCertificates(runtime, config));
}

/** `[[certificates]]` read and checked: a key that does not belong to its certificate stops the start. */
async function sniCertificates(runtime: Runtime, config: GatewayConfig): Promise<SniCertificate[]> {
  const out: SniCertificate[] = [];
  for (const [i, c] of config.certificates.entries()) {
    const cert = await readPemFile(runtime, c.cert, `certificates[${i}].cert`);
    const key = await readPemFile(runtime, c.key, `certificates[${i}].key`);
    if (!keyMatchesCertificate(cert, key))
      throw new ConfigError(
        `certificates[${i}].key: expected the private key of certificates[${i}].cert ("${c.cert}"), "${c.key}" does not match it`,
      );
    out.push({ snis: c.snis, cert, key });
  }
  return out;
}

/** With `[server] admin_client_ca`, the admin API listens with TLS and requires a client certificate. */
async function adminTls(runtime: Runtime, config: GatewayConfig): Promise<TlsFiles | undefined> {
  const { tls, admin_client_ca: ca } = config.server;
  if (!tls || ca === undefined) return undefined;
  return {
    cert: await readPemFile(runtime, tls.cert, "server.tls.cert"),
    key: await readPemFile(runtime, tls.key, "server.tls.key"),
    clientCa: await readPemFile(runtime, ca, "server.admin_client_ca"),
    requireClientCert: true,
  };
}

interface ListenerSpec {
  readonly hostname: string;
  readonly port: number;
  readonly tls?: TlsFiles;
  readonly reusePort?: boolean;
  readonly limits: ListenerLimits;
  readonly strict?: boolean;
  readonly handler: RequestHandler;
}

/**
 * A handler that threw past the pipeline's error mapping (which logs what it maps): our failure,
 * logged with the request id the 500 carries. Method and path only: no header, no query.
 */
function listenerFailure(log: Logger, listener: string): (error: unknown, request: Request | undefined) => Response {
  return (error, request) => {
    const requestId = requestIdFrom(request?.headers ?? new Headers());
    const path = request ? splitTarget(request.url).path : undefined;
    log.error("listener.handler_failed", { listener, request_id: requestId, method: request?.method, path, error });
    return errorResponse(undefined, { requestId });
  };
}

function listenerLimits(server: GatewayConfig["server"]): ListenerLimits {
  return {
    clientHeaderTimeout: server.client_header_timeout,
    tlsHandshakeTimeout: server.tls_handshake_timeout,
    keepaliveTimeout: server.keepalive_timeout,
    maxConnections: server.max_connections,
  };
}

const sameLimits = (a: ListenerLimits, b: ListenerLimits) =>
  a.clientHeaderTimeout === b.clientHeaderTimeout &&
  a.tlsHandshakeTimeout === b.tlsHandshakeTimeout &&
  a.keepaliveTimeout === b.keepaliveTimeout &&
  a.maxConnections === b.maxConnections;

type ClientCertificate = { readonly cert: string; readonly key: string };

/** A `client_certificate = { cert, key }` read and checked (the key must be the certificate's). */
async function readClientCertificate(runtime: Runtime, files: { cert: string; key: string }, at: string): Promise<ClientCertificate> {
  const cert = await readPemFile(runtime, files.cert, `${at}.cert`);
  const key = await readPemFile(runtime, files.key, `${at}.key`);
  if (!keyMatchesCertificate(cert, key))
    throw new ConfigError(
      `${at}.key: expected the private key of ${at.slice(at.lastIndexOf(".") + 1)}.cert ("${files.cert}"), "${files.key}" does not match it`,
    );
  return { cert, key };
}

/** Each `[[upstreams]]`' own `client_certificate`, by lower-case name. */
async function upstreamCertificates(runtime: Runtime, config: GatewayConfig): Promise<Map<string, ClientCertificate>> {
  const out = new Map<string, ClientCertificate>();
  for (const [i, u] of config.upstreams.entries())
    if (u.client_certificate)
      out.set(u.name.toLowerCase(), await readClientCertificate(runtime, u.client_certificate, `upstreams[${i}].client_certificate`));
  return out;
}

/**
 * Outbound TLS of each service: `[server] trusted_certificates` plus its own `ca_certificates`,
 * its `client_certificate` (else its `[[upstreams]]`' one, as Kong), `tls_verify` and `tls_verify_depth`.
 */
async function serviceTls(
  runtime: Runtime,
  config: GatewayConfig,
  trusted: readonly string[],
  upstreamCerts: ReadonlyMap<string, ClientCertificate>,
): Promise<Map<string, OutboundTls>> {
  const out = new Map<string, OutboundTls>();
  for (const [i, s] of config.services.entries()) {
    if (s.url.protocol !== "https:") {
      out.set(s.name, {});
      continue;
    }
    const own = await Promise.all(s.ca_certificates.map((f, j) => readPemFile(runtime, f, `services[${i}].ca_certificates[${j}]`)));
    const client = s.client_certificate
      ? await readClientCertificate(runtime, s.client_certificate, `services[${i}].client_certificate`)
      : (upstreamCerts.get(s.url.hostname.toLowerCase()) ?? {});
    out.set(s.name, {
      ca: [...trusted, ...own],
      verify: s.tls_verify,
      ...(s.tls_verify_depth !== undefined ? { verifyDepth: s.tls_verify_depth } : {}),
      ...client,
    });
  }
  return out;
}

/** The running `[[upstreams]]`, by lower-case name; a reload keeps what health checks learnt. */
function buildUpstreams(
  runtime: Runtime,
  config: GatewayConfig,
  trusted: readonly string[],
  certificates: ReadonlyMap<string, ClientCertificate>,
  log: Logger,
  previous?: ReadonlyMap<string, UpstreamPool>,
): Map<string, UpstreamPool> {
  const pools = new Map<string, UpstreamPool>();
  for (const u of config.upstreams) {
    const type = u.healthchecks.active.type;
    const fetch = runtime.createUpstreamFetch(
      type === "https" ? { ca: [...trusted], verify: u.healthchecks.active.https_verify_certificate, ...certificates.get(u.name.toLowerCase()) } : {},
    );
    const prober = createProber(u, { fetch, connect: runtime.tcpConnect });
    const pool = new UpstreamPool(u, prober, (target, healthy) =>
      log[healthy ? "info" : "warn"]("upstream.target_health", { upstream: u.name, target: target.name, health: healthy ? "HEALTHY" : "UNHEALTHY" }),
    );
    const before = previous?.get(u.name.toLowerCase());
    if (before) pool.health.adopt(before.health);
    pools.set(u.name.toLowerCase(), pool);
  }
  return pools;
}

/** Everything built from one config; swapped as a whole on reload. */
interface Generation {
  readonly loaded: LoadedConfig;
  readonly app: ProxyApp;
  /** The same routes and plugin instances, answering decisions instead of proxying (`decision_listen`). */
  readonly decision: ProxyApp | undefined;
  readonly upstreams: ReadonlyMap<string, UpstreamPool>;
  readonly admin: Hono;
  readonly specs: ReadonlyMap<string, ListenerSpec>;
}

const sameSpec = (a: ListenerSpec, b: ListenerSpec) =>
  a.hostname === b.hostname &&
  a.port === b.port &&
  a.tls?.cert === b.tls?.cert &&
  a.tls?.key === b.tls?.key &&
  a.tls?.clientCa === b.tls?.clientCa &&
  a.tls?.requireClientCert === b.tls?.requireClientCert &&
  JSON.stringify(a.tls?.certificates) === JSON.stringify(b.tls?.certificates) &&
  sameLimits(a.limits, b.limits) &&
  a.strict === b.strict;

/** How a worker of `[server] workers = N` differs (src/cli/workers.ts). */
export interface WorkerOptions {
  /** Share the proxy ports with the other workers (SO_REUSEPORT). */
  readonly reusePort?: boolean;
  /** Serve the admin API (worker 0 only). */
  readonly admin?: boolean;
}

export async function startGateway(
  runtime: Runtime,
  loaded: LoadedConfig,
  log: Logger = createLogger(loaded.config.server.log_level),
  worker: WorkerOptions = {},
): Promise<RunningGateway> {
  const startedAt = Date.now();
  const metrics = new Metrics(VERSION, `${runtime.name} ${runtime.version}`, {
    // Once per process: /metrics then serves the gateway's own series, and each scrape retries.
    onDefaultMetricsError: (error) => log.error("metrics.process_metrics_failed", { error }),
  });
  const shared = createShared();
  // One link to the fleet's Redis per process, kept across reloads (a [cluster] change needs a restart).
  const clusterConfig = loaded.config.cluster;
  // Loaded only for a [cluster]: the Redis client's modules are a large part of a small config's start.
  const cluster =
    clusterConfig.strategy === "redis"
      ? (await import("../cluster/index.ts")).createCluster(clusterConfig, {
          log,
          metrics,
          trustedCertificates: await readTrustedCertificates(runtime, loaded.config),
        })
      : undefined;
  // Bounded: without its Redis a node still starts, and serves from its local caches.
  await cluster?.link.ready(clusterConfig.connect_timeout);
  // One key store per process, like `shared`: signing keys outlive reloads ([keys] changes need a restart).
  // With [cluster] sharing "keys", the fleet's set in Redis (src/cluster/key-store.ts).
  const keysConfig = loaded.config.keys;
  const keys = (await cluster?.keyStore(runtime, keysConfig)) ?? (await openKeyStore(runtime, keysConfig, log));
  let current: Generation;
  // Listeners call through these, so a reload swaps the apps without touching sockets.
  const proxyHandler: RequestHandler = (req, conn) => current.app.fetch(req, conn);
  const decisionHandler: RequestHandler = (req, conn) => {
    const original = originalRequest(req, conn, current.loaded.config.server.decision_path_prefix);
    if (typeof original === "string") return badRequest(original);
    return current.decision!.fetch(original.request, original.conn);
  };
  const adminHandler: RequestHandler = (req, conn) => current.admin.fetch(req, conn);

  const build = async (next: LoadedConfig, previous?: Generation): Promise<Generation> => {
    const { config } = next;
    const trustedCertificates = await readTrustedCertificates(runtime, config);
    const tls = await serverTls(runtime, config);
    const pluginContext: PluginContext = { runtime, log, server: config.server, trustedCertificates, shared, metrics, keys, cluster };
    // The fetch client (a benchmark comparison) cannot see the chain: refuse rather than ignore the limit.
    const deep = upstreamClient(runtime) === "fetch" ? config.services.findIndex((s) => s.tls_verify_depth !== undefined) : -1;
    if (deep >= 0) throw new ConfigError(`services[${deep}].tls_verify_depth: not enforced with GATEWAY_UPSTREAM_CLIENT=fetch; unset one of them`);
    const upstreamCerts = await upstreamCertificates(runtime, config);
    const outbound = await serviceTls(runtime, config, trustedCertificates, upstreamCerts);
    const upstreams = buildUpstreams(runtime, config, trustedCertificates, upstreamCerts, log, previous?.upstreams);
    const app = await createProxyApp(config, {
      upstreams,
      log,
      metrics,
      pluginContext,
      ...(previous ? { reuse: previous.app.plugins, routing: previous.app.routing } : {}),
      ...(config.keys.publish_path ? { publicRoutes: [{ path: config.keys.publish_path, handler: publishedJwks(keys) }] } : {}),
      upstreamFetch: (service) => runtime.createUpstreamFetch(outbound.get(service.name) ?? {}),
      upstreamConnect: (service: ServiceConfig, endpoint?: { hostname: string; port: number }) => {
        const https = service.url.protocol === "https:";
        const hostname = endpoint?.hostname ?? (service.url.hostname.startsWith("[") ? service.url.hostname.slice(1, -1) : service.url.hostname);
        const port = endpoint?.port ?? (service.url.port ? Number(service.url.port) : https ? 443 : 80);
        const tls = outbound.get(service.name) ?? {};
        return (events) => runtime.connect({ hostname, port, ...(https ? { tls } : {}), timeoutMs: service.connect_timeout }, events);
      },
      ...(upstreamClient(runtime) === "socket"
        ? {
            upstreamPool: (service: ServiceConfig, endpoint?: { hostname: string; port: number }) =>
              servicePool(runtime.connect, config.server, service, outbound.get(service.name) ?? {}, endpoint),
          }
        : {}),
    });
    const decision = config.server.decision_listen
      ? await createProxyApp(config, {
          log,
          metrics,
          pluginContext,
          reuse: app.plugins,
          decide: true,
          upstreamFetch: () => runtime.createUpstreamFetch({}),
        })
      : undefined;
    const admin = createAdminApp({
      config,
      references: next.references,
      upstreams,
      runtime,
      startedAt,
      pluginContext,
      plugins: app.plugins,
      reload: () => gateway.reload(),
    });
    const specs = new Map<string, ListenerSpec>();
    const reusePort = worker.reusePort ?? false;
    const limits = listenerLimits(config.server);
    const strict = config.server.strict_listener;
    specs.set("proxy", { ...config.server.proxy_listen, reusePort, limits, strict, handler: proxyHandler });
    if (config.server.proxy_tls_listen && tls)
      specs.set("proxy_tls", { ...config.server.proxy_tls_listen, tls, reusePort, limits, strict, handler: proxyHandler });
    if (config.server.admin_listen !== "off" && worker.admin !== false) {
      const tls = await adminTls(runtime, config);
      specs.set("admin", { ...config.server.admin_listen, ...(tls ? { tls } : {}), limits, handler: adminHandler });
    }
    if (config.server.decision_listen)
      specs.set("decision", { ...config.server.decision_listen, reusePort, limits, strict, handler: decisionHandler });
    return { loaded: next, app, upstreams, decision, admin, specs };
  };

  const listeners = new Map<string, Listener>();
  const open = async (name: string, spec: ListenerSpec) => {
    const listener = await runtime.listen({ ...spec, onError: listenerFailure(log, name) });
    listeners.set(name, listener);
    log.info("listener.started", { listener: name, address: `${listener.hostname}:${listener.port}`, tls: !!spec.tls, mtls: !!spec.tls?.clientCa });
  };

  /** Rebinds what changed: close first (a changed certificate may keep its port), then open. */
  const applyListeners = async (next: ReadonlyMap<string, ListenerSpec>, previous?: ReadonlyMap<string, ListenerSpec>) => {
    for (const [name, listener] of listeners) {
      const before = previous?.get(name);
      const after = next.get(name);
      if (!after || !before || !sameSpec(before, after)) {
        listeners.delete(name);
        await listener.stop(current.loaded.config.server.shutdown_timeout);
        log.info("listener.stopped", { listener: name });
      }
    }
    for (const [name, spec] of next) if (!listeners.has(name)) await open(name, spec);
  };

  const warn = (config: GatewayConfig) => {
    for (const warning of configWarnings(config, pluginRegistry)) log.warn("config.warning", { message: warning });
  };

  try {
    current = await build(loaded);
  } catch (error) {
    await cluster?.close();
    throw error;
  }
  // Not needed before the first request: the process metrics are built once the gateway serves.
  // defaultMetrics() never rejects: a failure is logged once through onDefaultMetricsError.
  const defaultMetrics = setTimeout(() => metrics.defaultMetrics(), 1_000);
  (defaultMetrics as { unref?: () => void }).unref?.();
  metrics.upstreamTargets(() =>
    [...current.upstreams.values()].flatMap((p) =>
      p.balancer.targets.map((t) => ({ upstream: p.config.name, target: t.name, state: p.health.state(t) })),
    ),
  );
  for (const pool of current.upstreams.values()) pool.health.start();
  try {
    await applyListeners(current.specs);
  } catch (error) {
    await Promise.all([...listeners.values()].map((l) => l.stop(0)));
    await current.app.close();
    await cluster?.close();
    throw error;
  }
  warn(loaded.config);
  log.info("gateway.started", {
    version: VERSION,
    runtime: `${runtime.name} ${runtime.version}`,
    config: loaded.file,
    startup_ms: Math.round(performance.now()),
  });

  let reloading: Promise<ReloadResult> | undefined;
  let stopping: Promise<void> | undefined;
  const gateway: RunningGateway = {
    listeners,
    reload() {
      // Reloads are serialised: a burst of SIGHUPs applies the file once at a time.
      const run = async (): Promise<ReloadResult> => {
        if (stopping) return { ok: false, message: "the gateway is stopping" };
        const previous = current;
        let next: Generation;
        try {
          next = await build(await loadConfig(runtime, previous.loaded.file, pluginRegistry), previous);
        } catch (error) {
          const message = error instanceof ConfigError ? error.message : `reload failed: ${(error as Error).message}`;
          metrics.reload("failure");
          log.error("config.reload_failed", { message });
          return { ok: false, message };
        }
        current = next;
        for (const pool of previous.upstreams.values()) pool.health.stop();
        for (const pool of next.upstreams.values()) pool.health.start();
        log.setLevel(next.loaded.config.server.log_level);
        if (next.loaded.config.keys.jwks_file !== keysConfig.jwks_file || next.loaded.config.keys.rotation_grace !== keysConfig.rotation_grace) {
          log.warn("keys.restart_required", {
            detail: "[keys] jwks_file or rotation_grace changed: the running key store is kept until the gateway restarts",
          });
        }
        if (JSON.stringify(next.loaded.config.cluster) !== JSON.stringify(clusterConfig)) {
          log.warn("cluster.restart_required", { detail: "[cluster] changed: the running link to redis is kept until the gateway restarts" });
        }
        try {
          await applyListeners(next.specs, previous.specs);
        } catch (error) {
          log.error("listener.rebind_failed", { error });
        }
        // In-flight requests of the old generation keep its plugin instances until they finish.
        const kept = new Set(next.app.plugins.values());
        setTimeout(() => void previous.app.close(kept), previous.loaded.config.server.shutdown_timeout).unref?.();
        metrics.reload("success");
        warn(next.loaded.config);
        log.info("config.reloaded", {
          config: next.loaded.file,
          plugins_reused: [...previous.app.plugins.values()].filter((p) => kept.has(p)).length,
        });
        return { ok: true };
      };
      reloading = (reloading ?? Promise.resolve({ ok: true } as ReloadResult)).then(run, run);
      return reloading;
    },
    stop() {
      stopping ??= (async () => {
        const grace = current.loaded.config.server.shutdown_timeout;
        log.info("gateway.stopping", { grace_ms: grace });
        clearTimeout(defaultMetrics);
        await Promise.all([...listeners.values()].map((l) => l.stop(grace)));
        for (const pool of current.upstreams.values()) pool.health.stop();
        await current.app.close();
        await cluster?.close();
        keys.close();
        log.info("gateway.stopped");
      })();
      return stopping;
    },
  };
  return gateway;
}
