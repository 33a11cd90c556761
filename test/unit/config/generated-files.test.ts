/** The shipped JSON Schema and configuration reference are generated, and must be current. */
import { describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import Ajv2020 from "ajv/dist/2020";
import { parse } from "smol-toml";
import { configurationMarkdown } from "../../../src/config/docs.ts";
import { jsonSchema } from "../../../src/config/json-schema.ts";
import { pluginRegistry } from "../../../src/plugins/registry.ts";

const root = resolve(import.meta.dir, "../../..");
const read = (f: string) => readFileSync(`${root}/${f}`, "utf8");

describe("generated files", () => {
  it("gateway.schema.json is what `oidc-gateway schema` prints (run `make docs` after changing a schema)", () => {
    expect(JSON.parse(read("gateway.schema.json"))).toEqual(jsonSchema(pluginRegistry));
  });

  it("docs/configuration.md is current (run `make docs` after changing a schema)", () => {
    expect(read("docs/configuration.md")).toBe(configurationMarkdown(pluginRegistry));
  });

  it("the example gateway.toml points editors at the schema", () => {
    expect(read("gateway.toml").split("\n")[0]).toBe("#:schema ./gateway.schema.json");
  });
});

describe("the JSON Schema, as an editor uses it", () => {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const validate = ajv.compile(jsonSchema(pluginRegistry));

  it("accepts the example gateway.toml", () => {
    expect(validate(parse(read("gateway.toml")))).toBe(true);
  });

  it("flags an unknown key and a wrong type", () => {
    const bad = parse('[server]\nproxy_listn = "x"\naccess_log = "yes"\n');
    expect(validate(bad)).toBe(false);
    const messages = (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
    expect(messages).toContain("/server must NOT have additional properties");
    expect(messages).toContain("/server/access_log must be boolean");
  });

  it("describes every key with a description", () => {
    const missing: string[] = [];
    const walk = (s: any, path: string) => {
      for (const [k, v] of Object.entries<any>(s?.properties ?? {})) {
        if (!v.description) missing.push(`${path}${k}`);
        walk(v, `${path}${k}.`);
        if (v.items) walk(v.items, `${path}${k}[].`);
      }
      for (const variant of s?.allOf ?? []) walk(variant.then?.properties?.config, `${path}config(${variant.if?.properties?.name?.const}).`);
    };
    walk(jsonSchema(pluginRegistry), "");
    expect(missing).toEqual([]);
  });
});
