/** The admin API: status and read-only views of the running config, plus plugins' own endpoints. */
import { Hono, type Context } from "hono";
import type { GatewayConfig } from "../config/schema.ts";
import { pluginRegistry } from "../plugins/registry.ts";
import type { PluginContext, PluginInstance } from "../plugins/types.ts";
import type { Runtime } from "../runtime/types.ts";
import { VERSION } from "../version.ts";
import { keysAdmin } from "../keys/admin.ts";
import { adminGuard } from "./guard.ts";
import { redact } from "./redact.ts";
import { showReferences, type VaultReference } from "../config/vault.ts";
import type { UpstreamPool } from "../upstream/balancer/upstream-pool.ts";

export interface AdminDeps {
  readonly config: GatewayConfig;
  /** Values that came from vault references: shown as the reference, never the value. */
  readonly references?: readonly VaultReference[];
  readonly runtime: Runtime;
  readonly startedAt: number;
  readonly pluginContext: PluginContext;
  /** The running plugin instances, asked for readiness. */
  readonly plugins: ReadonlyMap<string, PluginInstance>;
  /** The running upstreams, by lower-case name (their targets' health). */
  readonly upstreams?: ReadonlyMap<string, UpstreamPool>;
  /** Re-reads gateway.toml (POST /config/reload). */
  readonly reload: () => Promise<{ ok: true } | { ok: false; message: string }>;
}

const list = (data: unknown[]) => ({ data, next: null });

/** An upstream as the admin API shows it: targets as written (`host:port`). */
const upstreamView = (u: GatewayConfig["upstreams"][number]) => ({
  ...u,
  targets: u.targets.map((t) => ({ target: t.target.name, weight: t.weight })),
});

export function createAdminApp(deps: AdminDeps): Hono {
  const { config } = deps;
  const app = new Hono();
  app.use("*", adminGuard(config.server));
  app.get("/status", (c) =>
    c.json({
      version: VERSION,
      runtime: `${deps.runtime.name} ${deps.runtime.version}`,
      uptime_seconds: Math.round((Date.now() - deps.startedAt) / 1000),
      configuration: { services: config.services.length, routes: config.routes.length, plugins: config.plugins.length },
      memory: { rss_bytes: deps.runtime.memoryRss() },
    }),
  );
  // Cheap on purpose: load balancers poll it.
  app.get("/status/ready", (c) => {
    const reasons: string[] = [];
    for (const [key, instance] of deps.plugins) {
      const r = instance.readiness?.();
      if (r && !r.ready) reasons.push(`${key.slice(0, key.indexOf(":"))}: ${r.reason ?? "not ready"}`);
    }
    // A node whose Redis is down still serves (from local caches): degraded, not unready.
    const cluster = deps.pluginContext.cluster?.degradedReason();
    const degraded = cluster ? { degraded: [`cluster: ${cluster}`] } : {};
    return reasons.length ? c.json({ ready: false, reasons, ...degraded }, 503) : c.json({ ready: true, ...degraded });
  });
  app.get("/metrics", async (c) => {
    const metrics = deps.pluginContext.metrics;
    return c.body(await metrics.text(), 200, { "content-type": metrics.contentType });
  });
  app.post("/config/reload", async (c) => {
    const result = await deps.reload();
    return result.ok ? c.json({ message: "configuration reloaded" }) : c.json({ message: result.message }, 400);
  });
  const refs = deps.references ?? [];
  app.get("/services", (c) => c.json(list(config.services.map((s, i) => showReferences(redact(s), ["services", i], refs)))));
  app.get("/routes", (c) => c.json(list(config.routes.map((r, i) => showReferences(redact(r), ["routes", i], refs)))));
  app.get("/plugins", (c) =>
    c.json(list(config.plugins.map((p, i) => showReferences(redact(p, pluginRegistry.get(p.name)?.secretKeys ?? []), ["plugins", i], refs)))),
  );
  app.get("/upstreams", (c) => c.json(list(config.upstreams.map((u) => upstreamView(u)))));
  app.get("/upstreams/:name", (c) => {
    const pool = deps.upstreams?.get(c.req.param("name").toLowerCase());
    return pool ? c.json(upstreamView(pool.config)) : c.json({ message: "Not found" }, 404);
  });
  app.get("/upstreams/:name/targets", (c) => {
    const pool = deps.upstreams?.get(c.req.param("name").toLowerCase());
    return pool
      ? c.json(list(pool.config.targets.map((t) => ({ target: t.target.name, weight: t.weight, upstream: { name: pool.config.name } }))))
      : c.json({ message: "Not found" }, 404);
  });
  // Kong's shape: each target with its health as this node sees it.
  app.get("/upstreams/:name/health", (c) => {
    const pool = deps.upstreams?.get(c.req.param("name").toLowerCase());
    if (!pool) return c.json({ message: "Not found" }, 404);
    const data = pool.balancer.targets.map((t) => {
      const health = pool.health.state(t);
      return {
        target: t.name,
        weight: t.weight,
        upstream: { name: pool.config.name },
        health,
        data: { addresses: [{ ip: t.host, port: t.port, health, weight: t.weight }] },
      };
    });
    return c.json({ data, total: data.length, next: null });
  });
  // Kong's manual health marks: the target, or its one address (`ip:port`; a target here is one address).
  const setHealth = (healthy: boolean) => (c: Context) => {
    const pool = deps.upstreams?.get(c.req.param("name")!.toLowerCase());
    const name = c.req.param("target")!.toLowerCase();
    const target = pool?.balancer.targets.find((t) => t.name.toLowerCase() === name);
    const address = c.req.param("address");
    if (!pool || !target || (address !== undefined && address.toLowerCase() !== target.authority.toLowerCase()))
      return c.json({ message: "Not found" }, 404);
    // Health is per process: a mark made in the worker that serves the admin API would reach no other worker.
    if (config.server.workers > 1)
      return c.json({ message: "with [server] workers > 1 each worker keeps its own health state: a mark here would reach worker 0 only" }, 409);
    pool.health.mark(target, healthy);
    deps.pluginContext.log.info("admin.target_health_set", {
      upstream: pool.config.name,
      target: target.name,
      health: healthy ? "HEALTHY" : "UNHEALTHY",
    });
    return c.body(null, 204);
  };
  for (const [suffix, healthy] of [
    ["healthy", true],
    ["unhealthy", false],
  ] as const) {
    app.put(`/upstreams/:name/targets/:target/${suffix}`, setHealth(healthy));
    app.put(`/upstreams/:name/targets/:target/:address/${suffix}`, setHealth(healthy));
  }
  keysAdmin(app, deps.pluginContext.keys);
  const used = new Set(config.plugins.filter((p) => p.enabled).map((p) => p.name));
  for (const name of used) pluginRegistry.get(name)?.admin?.(app, deps.pluginContext);
  app.notFound((c) => c.json({ message: "Not found" }, 404));
  app.onError((error, c) => {
    deps.pluginContext.log.error("admin.request_failed", { error, path: c.req.path });
    return c.json({ message: "An unexpected error occurred" }, 500);
  });
  return app;
}
