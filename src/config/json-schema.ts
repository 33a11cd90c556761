/** The JSON Schema of gateway.toml for editors, generated from the same definitions that validate it. */
import { z } from "zod";
import { configSchema, type PluginSchemas } from "./schema.ts";

const identity = { resolvePath: (p: string) => p };

// biome-ignore lint/suspicious/noExplicitAny: zod's JSON Schema output, edited by key.
type JsonSchema = Record<string, any>;

export function jsonSchema(pluginRegistry: PluginSchemas): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema(identity, pluginRegistry), {
    io: "input",
    unrepresentable: "any",
    target: "draft-2020-12",
  }) as JsonSchema;
  // Plugin configs are validated per plugin name; for editors, describe each plugin's table.
  const variants = [...pluginRegistry.values()].map((p) => {
    const config = z.toJSONSchema(p.schema(identity), { io: "input", unrepresentable: "any", target: "draft-2020-12" }) as JsonSchema;
    delete config.$schema;
    // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then, not a thenable.
    return { if: { properties: { name: { const: p.name } } }, then: { properties: { config } } };
  });
  const plugin = schema.properties?.plugins?.items;
  if (plugin) {
    plugin.properties.name = { ...plugin.properties.name, enum: [...pluginRegistry.keys()] };
    plugin.allOf = variants;
  }
  return { $id: "https://github.com/oidc-gateway/oidc-gateway/gateway.schema.json", title: "oidc-gateway configuration (gateway.toml)", ...schema };
}
