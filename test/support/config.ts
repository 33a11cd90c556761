/**
 * gateway.toml text parsed in unit tests as the gateway parses its file at start (every plugin
 * registered), and the ConfigError a refused text gets: the config suites' shared setup.
 */
import { expect } from "bun:test";
import { parseConfig } from "../../src/config/load.ts";
import type { GatewayConfig } from "../../src/config/schema.ts";
import { ConfigError } from "../../src/errors.ts";
import { pluginRegistry } from "../../src/plugins/registry.ts";

/** Where the text claims to come from: relative paths resolve against its folder. */
export const CONFIG_FILE = "/etc/gw/gateway.toml";

/** One service "svc" and one catch-all route "r": the smallest config the gateway starts with. */
export const MINIMAL_CONFIG = `
[[services]]
name = "svc"
url = "http://127.0.0.1:9000/anything"

[[routes]]
name = "r"
service = "svc"
paths = ["/"]
`;

export function parseToml(toml: string, file = CONFIG_FILE): GatewayConfig {
  return parseConfig(toml, file, pluginRegistry);
}

/** The message `toml` is refused with; the test fails when it is accepted or fails otherwise. */
export function errorOf(toml: string, file = CONFIG_FILE): string {
  try {
    parseToml(toml, file);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).message;
  }
  throw new Error("expected a config error");
}
