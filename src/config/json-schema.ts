/** The JSON Schema of gateway.toml for editors, generated from the same definitions that validate it. */
import { z } from "zod";
import { configSchema, type PluginSchemas } from "./schema.ts";

const identity = { resolvePath: (p: string) => p };

export function jsonSchema(pluginRegistry: PluginSchemas): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema(identity, pluginRegistry), { io: "input", unrepresentable: "any", target: "draft-2020-12" }) as Record<string, any>;
  // Plugin configs are validated per plugin name; for editors, describe each plugin's table.
  const variants = [...pluginRegistry.values()].map((p) => {
    const config = z.toJSONSchema(p.schema(identity), { io: "input", unrepresentable: "any", target: "draft-2020-12" }) as Record<string, any>;
    delete config.$schema;
    return { if: { properties: { name: { const: p.name } } }, then: { properties: { config } } };
  });
  const plugin = schema.properties?.plugins?.items;
  if (plugin) {
    plugin.properties.name = { ...plugin.properties.name, enum: [...pluginRegistry.keys()] };
    plugin.allOf = variants;
  }
  return { $id: "https://github.com/oidc-gateway/oidc-gateway/gateway.schema.json", title: "oidc-gateway configuration (gateway.toml)", ...schema };
}
