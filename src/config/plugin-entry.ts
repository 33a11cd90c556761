/**
 * A `[[plugins]]` entry. Each plugin's `config` is validated by that plugin's own schema, looked
 * up by name in the registry the caller injects: config/ never imports the plugins.
 */
import { z } from "zod";
import { didYouMean } from "./did-you-mean.ts";
import { entityName, table, type SchemaContext } from "./fields.ts";

/** What the config layer needs of a plugin: its name and the schema of its `config` table. */
interface PluginSchemaSource {
  readonly name: string;
  schema(ctx: SchemaContext): z.ZodType;
  /** False for plugins that cannot be scoped to a consumer (authentication, `acl`), as in Kong. */
  readonly consumerScoped?: boolean;
  /** Consumers its validated config names (e.g. `anonymous`), checked against `[[consumers]]`: key → name. */
  consumerReferences?(config: never): readonly { readonly key: string; readonly consumer: string }[];
  /** Problems of its validated config with the rest of the file (e.g. a `[cluster]` it needs): key → message. */
  gatewayIssues?(config: never, gateway: never): readonly { readonly key: string; readonly message: string }[];
}

/** Plugin name -> schema source (the plugin registry, passed in by the caller). */
export type PluginSchemas = ReadonlyMap<string, PluginSchemaSource>;

export const pluginEntrySchema = (ctx: SchemaContext, pluginRegistry: PluginSchemas) =>
  table({
    name: z.string().describe("Plugin name (e.g. `openid-connect`)."),
    route: entityName().optional().describe("Apply only to this route."),
    service: entityName().optional().describe("Apply only to routes of this service."),
    consumer: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Apply only to requests of this consumer (`username`, else `custom_id`), once authenticated; Kong's precedence picks the most specific entry.",
      ),
    enabled: z.boolean().default(true).describe("A disabled plugin is validated but does not run."),
    config: z.record(z.string(), z.unknown()).default({}).describe("The plugin's own settings."),
  }).transform((entry, issues) => {
    const definition = pluginRegistry.get(entry.name);
    if (!definition) {
      issues.addIssue({
        code: "custom",
        path: ["name"],
        message: `unknown plugin "${entry.name}"${didYouMean(entry.name, [...pluginRegistry.keys()])}; expected one of ${[...pluginRegistry.keys()].map((n) => `"${n}"`).join(", ")}`,
      });
      return z.NEVER;
    }
    const parsed = definition.schema(ctx).safeParse(entry.config, { reportInput: true, jitless: true });
    if (!parsed.success) {
      for (const issue of parsed.error.issues) issues.addIssue({ ...issue, path: ["config", ...issue.path] } as never);
      return z.NEVER;
    }
    return { ...entry, config: parsed.data as unknown };
  });
