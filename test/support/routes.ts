/** Routes for router tests, written like Kong's Admin API JSON (defaults filled in as the schema does). */
import type { RouteConfig, ServiceConfig } from "../../src/config/schema.ts";
import type { RequestFacts } from "../../src/gateway/router/facts.ts";
import { Router, type CompiledRoute } from "../../src/gateway/router/router.ts";

export interface RouteSpec {
  name?: string;
  paths?: string[];
  hosts?: string[];
  methods?: string[];
  headers?: Record<string, string[]>;
  snis?: string[];
  sources?: { ip?: string; port?: number }[];
  destinations?: { ip?: string; port?: number }[];
  protocols?: string[];
  regex_priority?: number;
  strip_path?: boolean;
}

const service = { name: "s", url: new URL("http://127.0.0.1:1/") } as unknown as ServiceConfig;

export function compileRoutes(specs: readonly RouteSpec[]): CompiledRoute[] {
  return specs.map((s, index) => ({
    index,
    service,
    config: {
      name: s.name ?? `r${index}`,
      service: "s",
      paths: s.paths ?? [],
      hosts: s.hosts ?? [],
      methods: s.methods ?? [],
      headers: s.headers ?? {},
      snis: s.snis ?? [],
      sources: s.sources ?? [],
      destinations: s.destinations ?? [],
      protocols: s.protocols ?? ["http", "https"],
      strip_path: s.strip_path ?? true,
      preserve_host: false,
      path_handling: "v0",
      regex_priority: s.regex_priority ?? 0,
    } as unknown as RouteConfig,
  }));
}

export const routerOf = (specs: readonly RouteSpec[]) => new Router(compileRoutes(specs));

export interface RequestSpec {
  method?: string;
  host?: string;
  headers?: Record<string, string>;
  tls?: boolean;
  sni?: string;
  remoteAddress?: string;
  remotePort?: number;
  localAddress?: string;
  localPort?: number;
}

export function facts(path: string, r: RequestSpec = {}): RequestFacts {
  return {
    method: r.method ?? "GET",
    host: r.host ?? "gw.test",
    path,
    protocol: r.tls ? "https" : "http",
    headers: new Headers(r.headers ?? {}),
    sni: r.sni,
    remoteAddress: r.remoteAddress ?? "127.0.0.1",
    remotePort: r.remotePort ?? 50000,
    localAddress: r.localAddress ?? "127.0.0.1",
    localPort: r.localPort ?? 8000,
  };
}

/** The name of the route that `router` picks for the request, or undefined. */
export const winner = (router: Router, path: string, r?: RequestSpec) => router.match(facts(path, r))?.route.config.name;
