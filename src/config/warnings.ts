/** Settings that are valid but risky: `check` prints them (exit 0) and the gateway logs them at start. */
import { pluginRegistry } from "../plugins/registry.ts";
import type { GatewayConfig } from "./schema.ts";

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

export function configWarnings(config: GatewayConfig): string[] {
  const warnings: string[] = [];
  const admin = config.server.admin_listen;
  if (admin !== "off" && !LOOPBACK.test(admin.hostname)) {
    warnings.push(`server.admin_listen: the admin API listens on "${admin.hostname}", not on loopback; it can rotate keys and flush caches, so anyone who can reach it controls the gateway`);
  }
  config.services.forEach((s, i) => {
    if (s.url.protocol === "https:" && !s.tls_verify) warnings.push(`services[${i}].tls_verify: the upstream's certificate is not verified ('tls_verify = false')`);
  });
  config.plugins.forEach((p, i) => {
    const definition = pluginRegistry.get(p.name);
    for (const w of definition?.warnings?.(p.config as never, config) ?? []) warnings.push(`plugins[${i}].config.${w}`);
  });
  return warnings;
}
