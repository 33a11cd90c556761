/** Loading gateway.toml from a file with the runtime's own TOML parser: the same config, the same errors. */
import { afterAll, describe, expect, it } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateRoutes, routesToml } from "../../../bench/lib/generated-routes.ts";
import { loadConfig, parseConfig } from "../../../src/config/load.ts";
import { ConfigError } from "../../../src/errors.ts";
import { pluginRegistry } from "../../../src/plugins/registry.ts";
import { bunRuntime } from "../../../src/runtime/bun.ts";

const dir = mkdtempSync(join(tmpdir(), "gw-load-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function load(text: string) {
  const file = join(dir, `gateway-${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(file, text);
  // Whether the runtime's parser gave the result, or smol-toml did after it (the fallback would hide a broken native path).
  let native = false;
  const runtime = {
    ...bunRuntime,
    parseToml: (t: string) => {
      const parsed = bunRuntime.parseToml!(t);
      native = true;
      return parsed;
    },
  };
  const result = await loadConfig(runtime, file, pluginRegistry).catch((e: unknown) => e);
  return { file, result, native };
}

describe("loading gateway.toml with the runtime's TOML parser", () => {
  it("gives the config smol-toml gives, for 1 100 generated routes", async () => {
    const text = routesToml(generateRoutes(1_100, 1 / 11), "http://127.0.0.1:9000");
    const { file, result, native } = await load(text);
    expect(native).toBe(true);
    expect(JSON.stringify((result as { config: unknown }).config)).toBe(JSON.stringify(parseConfig(text, file, pluginRegistry)));
  });

  it("still names the file, line and column of a syntax error", async () => {
    const { file, result } = await load("[server]\naccess_log = false\nlog_level = [\n");
    expect(result).toBeInstanceOf(ConfigError);
    expect((result as ConfigError).message).toStartWith(`${file}:4:1: TOML syntax error`);
  });

  it("leaves a file with a date or time to smol-toml, so a date is no string", async () => {
    const { result, native } = await load(
      '[[services]]\nname = "s"\nurl = "http://127.0.0.1:1"\n[[routes]]\nname = 1979-05-27\nservice = "s"\npaths = ["/"]\n',
    );
    expect(native).toBe(false);
    expect(result).toBeInstanceOf(ConfigError);
    expect((result as ConfigError).message).toContain("routes[0].name: invalid input: expected string, received TomlDate");
  });
});
