/**
 * The one definition of gateway.toml: validation, defaults and a one-line doc per key.
 * `oidc-gateway schema` and docs/configuration.md are generated from it.
 */
import { z } from "zod";
import { checkSharedSalts, clusterSchema } from "../cluster/schema.ts";
import { keysSchema } from "../keys/schema.ts";
import { pluginRegistry } from "../plugins/registry.ts";
import { didYouMean } from "./did-you-mean.ts";
import { entityName, filePath, table, listen, listenOrOff, millis, type SchemaContext } from "./fields.ts";

const serverTls = (ctx: SchemaContext) =>
  table({
      cert: filePath(ctx).describe("PEM certificate (chain) served on `proxy_tls_listen`.")
        .meta({ kong: "kong.conf `ssl_cert`" }),
      key: filePath(ctx).describe("PEM private key of `cert`.")
        .meta({ kong: "kong.conf `ssl_cert_key`" }),
      client_ca: filePath(ctx)
        .optional()
        .describe("PEM CA bundle: when set, `proxy_tls_listen` asks for a client certificate and verifies it against these CAs (mTLS)."),
      require_client_cert: z
        .boolean()
        .default(false)
        .describe("Refuse requests on `proxy_tls_listen` that carry no client certificate valid for `client_ca`."),
    })
    .describe("Certificate and key of the TLS proxy listener.");

export const serverSchema = (ctx: SchemaContext) =>
  table({
      proxy_listen: listen().prefault("0.0.0.0:8000").describe("Address of the plain HTTP proxy listener.")
        .meta({ kong: "kong.conf `proxy_listen`" }),
      proxy_tls_listen: listen().optional().describe("Address of the HTTPS proxy listener; needs `[server.tls]`.")
        .meta({ kong: "kong.conf `proxy_listen` with `ssl`" }),
      admin_listen: listenOrOff()
        .prefault("127.0.0.1:8001")
        .describe('Address of the admin API, or "off". Keep it on loopback: it can rotate keys and flush caches.')
        .meta({ kong: "kong.conf `admin_listen`" }),
      trusted_certificates: z
        .array(filePath(ctx))
        .default([])
        .describe("PEM files with CAs trusted for outbound TLS (to IdPs and upstreams), on top of the system roots.")
        .meta({ kong: "kong.conf `lua_ssl_trusted_certificate`" }),
      tls: serverTls(ctx).optional(),
      log_level: z.enum(["debug", "info", "warn", "error"]).default("info").describe("Lowest level written to the log.")
        .meta({ kong: "kong.conf `log_level`" }),
      access_log: z.boolean().default(true).describe("Write one JSON line per proxied request."),
      watch: z.boolean().default(false).describe("Reload gateway.toml when the file changes (as SIGHUP and POST /config/reload do)."),
      shutdown_timeout: millis()
        .default(10_000)
        .describe("On SIGTERM/SIGINT, how long in-flight requests may take to finish before connections are closed (ms)."),
      workers: z
        .int()
        .min(1)
        .max(64)
        .default(1)
        .describe("Worker processes sharing the proxy ports (Linux SO_REUSEPORT), each with its own caches; worker 0 serves the admin API. Changing it needs a restart.")
        .meta({ kong: "kong.conf `nginx_worker_processes` (Kong's default is `auto`)" }),
    })
    .superRefine((server, ctx) => {
      if (server.proxy_tls_listen && !server.tls) {
        ctx.addIssue({ code: "custom", path: ["tls"], message: "expected a [server.tls] table with 'cert' and 'key' because 'proxy_tls_listen' is set" });
      }
    });

const serviceSchema = () =>
  table({
    name: entityName().describe("Unique name; routes and plugins refer to it."),
    url: z
      .url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" })
      .refine((u) => !/^[a-z]+:\/\/[^/?#]*@/i.test(u), "expected a URL without user:password (the admin API shows URLs, and the proxy does not send userinfo)")
      .transform((u) => new URL(u))
      .describe("Upstream URL: protocol, host, port and base path (Kong's `url` shorthand)."),
    connect_timeout: millis().default(60_000).describe("Time to connect to the upstream (ms)."),
    read_timeout: millis()
      .default(60_000)
      .describe("Time to wait for the upstream's response headers, and then between two reads of its body (ms)."),
    write_timeout: millis().default(60_000).describe("Time allowed between two writes of the request body to the upstream (ms)."),
    retries: z.int().min(0).max(32767).default(5).describe("Retries after a failed connection, for requests without a body."),
    tls_verify: z.boolean().default(true).describe("Verify the upstream's certificate for https:// services."),
  });

const routeSchema = () =>
  table({
      name: entityName().describe("Unique name; plugins refer to it."),
      service: entityName().describe("Name of the service requests are proxied to."),
      paths: z
        .array(z.string().regex(/^(\/|~)/, "expected a path starting with '/' (prefix) or '~' (regex)"))
        .default([])
        .describe("Path prefixes that match (`/api`), or regexes starting with `~`. The longest matching prefix wins."),
      hosts: z
        .array(z.string().regex(/^(\*\.)?[a-zA-Z0-9.-]+(\.\*)?(:\d+)?$/, "expected a host name, optionally with one leading or trailing '*' wildcard"))
        .default([])
        .describe("Host header values that match; one leading or trailing `*` wildcard allowed."),
      methods: z
        .array(z.string().regex(/^[A-Z]+$/, "expected an upper-case HTTP method"))
        .default([])
        .describe("HTTP methods that match; empty matches all."),
      protocols: z.array(z.enum(["http", "https"])).min(1).default(["http", "https"]).describe("Listener protocols that match."),
      strip_path: z.boolean().default(true).describe("Remove the matched path prefix before proxying."),
      preserve_host: z.boolean().default(false).describe("Send the caller's Host header upstream instead of the service's host."),
      path_handling: z.enum(["v0", "v1"]).default("v0").describe("Kong's rule for joining the service path and the request path."),
      regex_priority: z.int().default(0).describe("Order among regex paths: higher is tried first."),
    })
    .superRefine((route, ctx) => {
      if (!route.paths.length && !route.hosts.length && !route.methods.length) {
        ctx.addIssue({ code: "custom", message: "expected at least one of 'paths', 'hosts' or 'methods'" });
      }
      route.paths.forEach((p, i) => {
        if (!p.startsWith("~")) return;
        try {
          new RegExp(p.slice(1));
        } catch {
          ctx.addIssue({ code: "custom", path: ["paths", i], message: "expected a valid regular expression after '~'" });
        }
      });
    });

const pluginEntrySchema = (ctx: SchemaContext) =>
  table({
      name: z.string().describe("Plugin name (e.g. `openid-connect`)."),
      route: entityName().optional().describe("Apply only to this route."),
      service: entityName().optional().describe("Apply only to routes of this service."),
      enabled: z.boolean().default(true).describe("A disabled plugin is validated but does not run."),
      config: z.record(z.string(), z.unknown()).default({}).describe("The plugin's own settings."),
    })
    .transform((entry, issues) => {
      const definition = pluginRegistry.get(entry.name);
      if (!definition) {
        issues.addIssue({
          code: "custom",
          path: ["name"],
          message: `unknown plugin "${entry.name}"${didYouMean(entry.name, [...pluginRegistry.keys()])}; expected one of ${[...pluginRegistry.keys()].map((n) => `"${n}"`).join(", ")}`,
        });
        return z.NEVER;
      }
      const parsed = definition.schema(ctx).safeParse(entry.config, { reportInput: true });
      if (!parsed.success) {
        for (const issue of parsed.error.issues) issues.addIssue({ ...issue, path: ["config", ...issue.path] } as never);
        return z.NEVER;
      }
      return { ...entry, config: parsed.data as unknown };
    });

export const configSchema = (ctx: SchemaContext) =>
  table({
      server: serverSchema(ctx).prefault({}).describe("Listeners, TLS, outbound trust and logging."),
      services: z.array(serviceSchema()).default([]).describe("Upstream services."),
      routes: z.array(routeSchema()).default([]).describe("Rules that map requests to services."),
      plugins: z.array(pluginEntrySchema(ctx)).default([]).describe("Plugins: global, per service or per route."),
      keys: keysSchema(ctx).prefault({}).describe("The gateway's own signing keys (private_key_jwt) and their public JWKS (docs/identity.md)."),
      cluster: clusterSchema().prefault({}).describe("Several gateways sharing tokens, DPoP replay records and signing keys through Redis (docs/cluster.md)."),
    })
    .superRefine((config, ctx) => {
      const unique = (list: { name: string }[], key: string) => {
        const seen = new Set<string>();
        list.forEach((e, i) => {
          if (seen.has(e.name)) ctx.addIssue({ code: "custom", path: [key, i, "name"], message: `expected a unique name, "${e.name}" is used twice` });
          seen.add(e.name);
        });
      };
      unique(config.services, "services");
      unique(config.routes, "routes");
      const services = config.services.map((s) => s.name);
      const routes = config.routes.map((r) => r.name);
      config.routes.forEach((r, i) => {
        if (!services.includes(r.service))
          ctx.addIssue({ code: "custom", path: ["routes", i, "service"], message: `expected the name of a service, no service is named "${r.service}"${didYouMean(r.service, services)}` });
      });
      const scopes = new Set<string>();
      config.plugins.forEach((p, i) => {
        if (p.route !== undefined && !routes.includes(p.route))
          ctx.addIssue({ code: "custom", path: ["plugins", i, "route"], message: `expected the name of a route, no route is named "${p.route}"${didYouMean(p.route, routes)}` });
        if (p.service !== undefined && !services.includes(p.service))
          ctx.addIssue({ code: "custom", path: ["plugins", i, "service"], message: `expected the name of a service, no service is named "${p.service}"${didYouMean(p.service, services)}` });
        const scope = `${p.name}|${p.route ?? ""}|${p.service ?? ""}`;
        if (scopes.has(scope))
          ctx.addIssue({ code: "custom", path: ["plugins", i], message: `plugin "${p.name}" is configured twice for the same route/service/global scope` });
        scopes.add(scope);
      });
      checkSharedSalts(config, ctx);
    });

export type GatewayConfig = z.output<ReturnType<typeof configSchema>>;
export type ServerConfig = GatewayConfig["server"];
export type ServiceConfig = GatewayConfig["services"][number];
export type RouteConfig = GatewayConfig["routes"][number];
export type PluginEntry = GatewayConfig["plugins"][number];
