/** Settings that are valid but risky: `check` prints them (exit 0) and the gateway logs them at start. */
import type { GatewayConfig } from "./schema.ts";
import { isLoopbackHost } from "../lib/loopback.ts";

/** What warnings need of a plugin (the registry is passed in: config/ never imports plugins). */
export interface PluginWarnings {
  warnings?(config: never, gateway: Readonly<GatewayConfig>): string[];
}

export function configWarnings(config: GatewayConfig, pluginRegistry: ReadonlyMap<string, PluginWarnings>): string[] {
  const warnings: string[] = [];
  if (config.routes.length === 0) warnings.push("routes: no routes: every request will be answered 404 (add a [[routes]] entry with a service)");
  const admin = config.server.admin_listen;
  if (admin !== "off" && !isLoopbackHost(admin.hostname)) {
    warnings.push(
      `server.admin_listen: the admin API listens on "${admin.hostname}", not on loopback; it can rotate keys and flush caches, so anyone who can reach it controls the gateway`,
    );
  }
  const decision = config.server.decision_listen;
  if (decision && !isLoopbackHost(decision.hostname)) {
    warnings.push(
      `server.decision_listen: the decision listener listens on "${decision.hostname}", not on loopback; it trusts X-Original-*/X-Forwarded-* headers, so only the front proxy may reach it (a firewall or a private network)`,
    );
  }
  config.services.forEach((s, i) => {
    if (s.url.protocol === "https:" && !s.tls_verify)
      warnings.push(`services[${i}].tls_verify: the upstream's certificate is not verified ('tls_verify = false')`);
  });
  const named = new Set(config.services.map((s) => s.url.hostname.toLowerCase()));
  config.upstreams.forEach((u, i) => {
    if (!named.has(u.name.toLowerCase())) warnings.push(`upstreams[${i}].name: no service names upstream "${u.name}" as its host, so it is not used`);
  });
  config.plugins.forEach((p, i) => {
    const definition = pluginRegistry.get(p.name);
    for (const w of definition?.warnings?.(p.config as never, config) ?? []) warnings.push(`plugins[${i}].config.${w}`);
  });
  return warnings;
}
