/**
 * The one definition of gateway.toml: validation, defaults and a one-line doc per key, one file
 * per table. `oidc-gateway schema` and docs/configuration.md are generated from it.
 */
import { z } from "zod";
import { checkSharedSalts, clusterSchema } from "./cluster.ts";
import { consumerSchema } from "./consumers.ts";
import { didYouMean } from "./did-you-mean.ts";
import { table, type SchemaContext } from "./fields.ts";
import { keysSchema } from "./keys.ts";
import { pluginEntrySchema, type PluginSchemas } from "./plugin-entry.ts";
import { loadedRoutesSchema, routeSchema } from "./routes.ts";
import { serverSchema } from "./server.ts";
import { serviceSchema } from "./services.ts";
import { upstreamSchema } from "./upstreams.ts";
import { certificateSchema } from "./certificates.ts";

export type { PluginSchemas } from "./plugin-entry.ts";

/**
 * A list table's schema, built when a file first has that table: building them all cost every
 * start ~20 ms of CPU (`[[upstreams]]` alone ~12 ms), most files have few of them. Issues stand
 * as the schema words them; the type is the schema's.
 */
const onFirstUse = <T extends z.ZodType>(make: () => T): T => {
  let schema: T | undefined;
  return z.unknown().transform((value, ctx) => {
    const parsed = (schema ??= make()).safeParse(value, { reportInput: true, jitless: true });
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues) ctx.addIssue(issue as never);
    return z.NEVER;
  }) as unknown as T;
};

/**
 * `loading`: the variant load.ts validates with (routes by their fast path, list tables built
 * on first use); docs and the JSON Schema use the plain one.
 */
export const configSchema = (ctx: SchemaContext, plugins: PluginSchemas, loading = false) => {
  const list = <T extends z.ZodType>(make: () => T): T => (loading ? onFirstUse(make) : make());
  return table({
    server: serverSchema(ctx).prefault({}).describe("Listeners, TLS, outbound trust and logging."),
    services: list(() => z.array(serviceSchema(ctx)))
      .default([])
      .describe("Upstream services."),
    certificates: list(() => z.array(certificateSchema(ctx)))
      .default([])
      .describe("Certificates the TLS proxy listener serves by SNI; `[server.tls]` is served to every other name."),
    upstreams: list(() => z.array(upstreamSchema(ctx)))
      .default([])
      .describe("Load-balanced groups of targets that services name as their host (Kong's upstreams and targets)."),
    routes: (loading ? loadedRoutesSchema() : z.array(routeSchema())).default([]).describe("Rules that map requests to services."),
    consumers: list(() => z.array(consumerSchema()))
      .default([])
      .describe("Consumers: who calls, as Kong's consumers (mapped by authentication plugins, read by `acl` and `rate-limiting`)."),
    plugins: list(() => z.array(pluginEntrySchema(ctx, plugins)))
      .default([])
      .describe("Plugins: global, per service, per route or per consumer."),
    keys: keysSchema(ctx).prefault({}).describe("The gateway's own signing keys (private_key_jwt) and their public JWKS (docs/identity.md)."),
    cluster: clusterSchema()
      .prefault({})
      .describe("Several gateways sharing tokens, DPoP replay records and signing keys through Redis (docs/cluster.md)."),
  }).superRefine((config, ctx) => {
    /** The names of `list`; a name used twice is an issue. */
    const unique = (list: { name: string }[], key: string) => {
      const seen = new Set<string>();
      for (let i = 0; i < list.length; i++) {
        const name = list[i]!.name;
        if (seen.has(name)) ctx.addIssue({ code: "custom", path: [key, i, "name"], message: `expected a unique name, "${name}" is used twice` });
        seen.add(name);
      }
      return seen;
    };
    unique(config.services, "services");
    const routeNames = unique(config.routes, "routes");
    const snis = new Map<string, number>();
    config.certificates.forEach((c, i) => {
      c.snis.forEach((sni, j) => {
        const first = snis.get(sni);
        if (first !== undefined)
          ctx.addIssue({
            code: "custom",
            path: ["certificates", i, "snis", j],
            message: `expected each server name once, "${sni}" is also in certificates[${first}]`,
          });
        else snis.set(sni, i);
      });
    });
    if (config.certificates.length && !config.server.proxy_tls_listen)
      ctx.addIssue({
        code: "custom",
        path: ["certificates"],
        message: "expected 'proxy_tls_listen' in [server]: certificates are served by the TLS proxy listener",
      });
    const upstreamNames = new Set<string>();
    config.upstreams.forEach((u, i) => {
      const name = u.name.toLowerCase();
      if (upstreamNames.has(name))
        ctx.addIssue({ code: "custom", path: ["upstreams", i, "name"], message: `expected a unique name, "${u.name}" is used twice` });
      upstreamNames.add(name);
    });
    const services = config.services.map((s) => s.name);
    const serviceNames = new Set(services);
    for (let i = 0; i < config.routes.length; i++) {
      const service = config.routes[i]!.service;
      if (!serviceNames.has(service))
        ctx.addIssue({
          code: "custom",
          path: ["routes", i, "service"],
          message: `expected the name of a service, no service is named "${service}"${didYouMean(service, services)}`,
        });
    }
    const usernames = new Set<string>();
    const customIds = new Set<string>();
    const ids = new Set<string>();
    config.consumers.forEach((c, i) => {
      const once = (value: string | undefined, seen: Set<string>, key: string) => {
        if (value === undefined) return;
        if (seen.has(value))
          ctx.addIssue({ code: "custom", path: ["consumers", i, key], message: `expected a unique ${key}, "${value}" is used twice` });
        seen.add(value);
      };
      once(c.username, usernames, "username");
      once(c.custom_id, customIds, "custom_id");
      once(c.id, ids, "id");
    });
    const consumerNames = [...usernames, ...customIds];
    const knownConsumer = (name: string) => usernames.has(name) || customIds.has(name) || ids.has(name);
    const noConsumer = (name: string) => `no consumer has the username or custom_id "${name}"${didYouMean(name, consumerNames)}`;
    const scopes = new Set<string>();
    config.plugins.forEach((p, i) => {
      const source = plugins.get(p.name);
      if (p.consumer !== undefined) {
        if (source?.consumerScoped === false)
          ctx.addIssue({
            code: "custom",
            path: ["plugins", i, "consumer"],
            message: `plugin "${p.name}" cannot be scoped to a consumer (as in Kong): it decides who the consumer is, or runs for every one`,
          });
        else if (!knownConsumer(p.consumer))
          ctx.addIssue({ code: "custom", path: ["plugins", i, "consumer"], message: `expected the name of a consumer, ${noConsumer(p.consumer)}` });
      }
      for (const issue of source?.gatewayIssues?.(p.config as never, config as never) ?? []) {
        ctx.addIssue({ code: "custom", path: ["plugins", i, "config", ...issue.key.split(".")], message: issue.message });
      }
      for (const ref of source?.consumerReferences?.(p.config as never) ?? []) {
        if (!knownConsumer(ref.consumer))
          ctx.addIssue({
            code: "custom",
            path: ["plugins", i, "config", ref.key],
            message: `expected the name of a consumer, ${noConsumer(ref.consumer)}`,
          });
      }
      if (p.route !== undefined && !routeNames.has(p.route))
        ctx.addIssue({
          code: "custom",
          path: ["plugins", i, "route"],
          message: `expected the name of a route, no route is named "${p.route}"${didYouMean(p.route, [...routeNames])}`,
        });
      if (p.service !== undefined && !serviceNames.has(p.service))
        ctx.addIssue({
          code: "custom",
          path: ["plugins", i, "service"],
          message: `expected the name of a service, no service is named "${p.service}"${didYouMean(p.service, services)}`,
        });
      const scope = `${p.name}|${p.route ?? ""}|${p.service ?? ""}|${p.consumer ?? ""}`;
      if (scopes.has(scope))
        ctx.addIssue({
          code: "custom",
          path: ["plugins", i],
          message: `plugin "${p.name}" is configured twice for the same route/service/consumer/global scope`,
        });
      scopes.add(scope);
    });
    checkSharedSalts(config, ctx);
  });
};

export type GatewayConfig = z.output<ReturnType<typeof configSchema>>;
export type ServerConfig = GatewayConfig["server"];
export type ServiceConfig = GatewayConfig["services"][number];
export type RouteConfig = GatewayConfig["routes"][number];
export type PluginEntry = GatewayConfig["plugins"][number];
export type { ConsumerConfig } from "./consumers.ts";
