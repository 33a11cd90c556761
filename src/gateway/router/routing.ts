/**
 * A config's routes compiled: the router and the routes it answers with. A reload whose routes
 * and services are the same as the running config's keeps the running routing, since building the
 * router for thousands of routes costs more than comparing them; any difference builds it anew.
 */
import type { GatewayConfig } from "../../config/schema.ts";
import { Router, type CompiledRoute } from "./router.ts";

export interface Routing {
  readonly routes: readonly CompiledRoute[];
  readonly router: Router;
  /** The services the routes point at: what a reload compares, after the routes. */
  readonly services: GatewayConfig["services"];
}

export function routingFor(config: GatewayConfig, previous?: Routing): Routing {
  const services = config.services;
  // Services hold URL objects, which JSON compares by their text; only a reload whose routes are unchanged pays for it.
  if (previous && sameRoutes(previous.routes, config.routes) && JSON.stringify(previous.services) === JSON.stringify(services)) return previous;
  const servicesByName = new Map(config.services.map((s) => [s.name, s]));
  const routes: CompiledRoute[] = config.routes.map((r, index) => ({ config: r, service: servicesByName.get(r.service)!, index }));
  return { routes, router: new Router(routes), services };
}

function sameRoutes(compiled: readonly CompiledRoute[], routes: GatewayConfig["routes"]): boolean {
  if (compiled.length !== routes.length) return false;
  for (let i = 0; i < routes.length; i++) if (!sameData(compiled[i]!.config, routes[i])) return false;
  return true;
}

/** Equal validated config values: strings, numbers, booleans, lists and tables of them. */
export function sameData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameData(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b) || Object.getPrototypeOf(a) !== Object.prototype || Object.getPrototypeOf(b) !== Object.prototype) return false;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let keys = 0;
  for (const key in x) {
    if (!Object.hasOwn(y, key) || !sameData(x[key], y[key])) return false;
    keys++;
  }
  for (const _ in y) keys--;
  return keys === 0;
}
