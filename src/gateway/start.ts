/** Start a gateway from a loaded config: plugin context, proxy and admin apps, listeners. */
import { createAdminApp } from "../admin/app.ts";
import { ConfigError, type LoadedConfig } from "../config/load.ts";
import type { GatewayConfig } from "../config/schema.ts";
import { createLogger, type Logger } from "../log.ts";
import type { PluginContext, Shared } from "../plugins/types.ts";
import type { Listener, Runtime, TlsFiles } from "../runtime/types.ts";
import { VERSION } from "../version.ts";
import { createProxyApp } from "./app.ts";

export interface RunningGateway {
  readonly listeners: readonly { readonly name: string; readonly listener: Listener }[];
  /** Stop accepting, let in-flight requests finish (bounded by `shutdown_timeout`), release plugins. */
  stop(): Promise<void>;
}

function createShared(): Shared {
  const values = new Map<string, unknown>();
  return {
    once<T>(key: string, create: () => T): T {
      if (!values.has(key)) values.set(key, create());
      return values.get(key) as T;
    },
  };
}

async function readPem(runtime: Runtime, file: string, key: string): Promise<string> {
  try {
    return await runtime.readTextFile(file);
  } catch (error) {
    throw new ConfigError(`${key}: cannot read "${file}" (${(error as Error).message})`);
  }
}

async function serverTls(runtime: Runtime, config: GatewayConfig): Promise<TlsFiles | undefined> {
  const tls = config.server.tls;
  if (!tls) return undefined;
  return {
    cert: await readPem(runtime, tls.cert, "server.tls.cert"),
    key: await readPem(runtime, tls.key, "server.tls.key"),
    ...(tls.client_ca ? { clientCa: await readPem(runtime, tls.client_ca, "server.tls.client_ca") } : {}),
    requireClientCert: tls.require_client_cert,
  };
}

export async function startGateway(runtime: Runtime, loaded: LoadedConfig, log: Logger = createLogger(loaded.config.server.log_level)): Promise<RunningGateway> {
  const { config } = loaded;
  const startedAt = Date.now();
  const trustedCertificates = await Promise.all(config.server.trusted_certificates.map((f, i) => readPem(runtime, f, `server.trusted_certificates[${i}]`)));
  const tls = await serverTls(runtime, config);
  const pluginContext: PluginContext = { runtime, log, server: config.server, trustedCertificates, shared: createShared() };

  const app = await createProxyApp(config, {
    log,
    pluginContext,
    upstreamFetch: (service) =>
      runtime.createUpstreamFetch(service.url.protocol === "https:" ? { ca: trustedCertificates, verify: service.tls_verify } : {}),
  });
  const admin = createAdminApp({ config, runtime, startedAt, pluginContext });

  const listeners: { name: string; listener: Listener }[] = [];
  const open = async (name: string, address: { hostname: string; port: number }, options: { tls?: TlsFiles; handler: Parameters<Runtime["listen"]>[0]["handler"] }) => {
    const listener = await runtime.listen({ ...address, ...options });
    listeners.push({ name, listener });
    log.info("listener.started", { listener: name, address: `${listener.hostname}:${listener.port}`, tls: !!options.tls, mtls: !!options.tls?.clientCa });
  };
  try {
    await open("proxy", config.server.proxy_listen, { handler: app.fetch });
    if (config.server.proxy_tls_listen && tls) await open("proxy_tls", config.server.proxy_tls_listen, { tls, handler: app.fetch });
    if (config.server.admin_listen !== "off") await open("admin", config.server.admin_listen, { handler: (req, conn) => admin.fetch(req, conn) });
  } catch (error) {
    await Promise.all(listeners.map((l) => l.listener.stop(0)));
    throw error;
  }
  log.info("gateway.started", { version: VERSION, runtime: `${runtime.name} ${runtime.version}`, config: loaded.file, startup_ms: Math.round(performance.now()) });

  let stopping: Promise<void> | undefined;
  return {
    listeners,
    stop() {
      stopping ??= (async () => {
        log.info("gateway.stopping", { grace_ms: config.server.shutdown_timeout });
        await Promise.all(listeners.map((l) => l.listener.stop(config.server.shutdown_timeout)));
        await app.close();
        log.info("gateway.stopped");
      })();
      return stopping;
    },
  };
}
