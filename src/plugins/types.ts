/**
 * A plugin is a Hono middleware factory registered by name. Its config is validated at start
 * by its own schema, frozen, and handed to `create` once per configured instance.
 */
import type { Hono } from "hono";
import type { z } from "zod";
import type { Cluster } from "../cluster/index.ts";
import type { SchemaContext } from "../config/fields.ts";
import type { GatewayConfig, ServerConfig } from "../config/schema.ts";
import type { PluginHandler } from "../gateway/context.ts";
import type { KeyStore } from "../keys/types.ts";
import type { Shared } from "../lib/shared.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { Runtime } from "../runtime/types.ts";

export interface PluginContext {
  readonly runtime: Runtime;
  readonly log: Logger;
  readonly server: ServerConfig;
  /** PEM text of `[server] trusted_certificates`. */
  readonly trustedCertificates: readonly string[];
  readonly shared: Shared;
  /** Prometheus metrics: token cache events, IdP calls, DPoP replays. */
  readonly metrics: Metrics;
  /** The gateway's own signing keys (`private_key_jwt`), one store per process, kept across reloads. */
  readonly keys: KeyStore;
  /** The fleet's shared stores (`[cluster] strategy = "redis"`); undefined: everything is local. */
  readonly cluster?: Cluster | undefined;
  /** Where the entry applies (`route`, `service`, `consumer`; none: global), e.g. to name its shared counters. */
  readonly scope?: { readonly route?: string | undefined; readonly service?: string | undefined; readonly consumer?: string | undefined };
}

export interface PluginInstance {
  readonly handler: PluginHandler;
  /**
   * Header names this instance sets on the upstream request (e.g. `upstream_headers_names`).
   * On its routes a caller's header whose name normalises to one of them (case, `_` and `.`
   * as `-`) is removed before any plugin runs (docs/security.md, "Header hygiene").
   */
  readonly upstreamHeaderNames?: readonly string[];
  /**
   * For `GET /status/ready`: not ready until the plugin can serve (e.g. its issuer was
   * discovered at least once, or it is in back-off with cached data). Default: ready.
   */
  readiness?(): { readonly ready: boolean; readonly reason?: string };
  /** Released on shutdown or reload. */
  close?(): Promise<void> | void;
}

// biome-ignore lint/suspicious/noExplicitAny: the registry holds definitions of differing configs.
export interface PluginDefinition<C = any> {
  readonly name: string;
  /** Kong's priority: higher runs first. */
  readonly priority: number;
  /** Config key names whose values are secrets (redacted by the admin API). */
  readonly secretKeys: readonly string[];
  // biome-ignore lint/suspicious/noExplicitAny: the config's input type (TOML values) is the schema's to check.
  schema(ctx: SchemaContext): z.ZodType<C, any>;
  create(config: Readonly<C>, ctx: PluginContext): PluginInstance | Promise<PluginInstance>;
  /** False for plugins that cannot be scoped to a consumer (authentication, `acl`), as in Kong. Default true. */
  readonly consumerScoped?: boolean;
  /** Consumers its config names (e.g. `anonymous`): `check` refuses names no `[[consumers]]` entry has. */
  consumerReferences?(config: Readonly<C>): readonly { readonly key: string; readonly consumer: string }[];
  /** Problems of its config with the rest of the file (e.g. a `[cluster]` it needs), for `check`: dotted key under `config` → message. */
  gatewayIssues?(config: Readonly<C>, gateway: Readonly<GatewayConfig>): readonly { readonly key: string; readonly message: string }[];
  /**
   * Valid but risky settings (e.g. `ssl_verify = false`), each starting with the key name:
   * `"ssl_verify: ..."`. `check` prints them; the gateway logs them at start.
   */
  warnings?(config: Readonly<C>, gateway: Readonly<GatewayConfig>): string[];
  /** Routes the plugin adds to the admin API (e.g. `/openid-connect/issuers`), once per gateway. */
  admin?(app: Hono, ctx: PluginContext): void;
}

export const definePlugin = <C>(definition: PluginDefinition<C>): PluginDefinition<C> => definition;
