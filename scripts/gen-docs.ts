/** `make docs`: regenerate gateway.schema.json and docs/configuration.md from the schema. */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { configurationMarkdown } from "../src/config/docs.ts";
import { jsonSchema } from "../src/config/json-schema.ts";
import { pluginRegistry } from "../src/plugins/registry.ts";

const root = resolve(import.meta.dir, "..");
writeFileSync(`${root}/gateway.schema.json`, JSON.stringify(jsonSchema(pluginRegistry), null, 2) + "\n");
writeFileSync(`${root}/docs/configuration.md`, configurationMarkdown(pluginRegistry));
console.log("wrote gateway.schema.json and docs/configuration.md");
