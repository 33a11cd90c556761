/** `[cluster]` as `check` sees it: off by default, a Redis URL when on, and the shared salt rule. */
import { describe, expect, it } from "bun:test";
import { parseConfig } from "../../../src/config/load.ts";
import { ConfigError } from "../../../src/errors.ts";
import { pluginRegistry } from "../../../src/plugins/registry.ts";

const BASE = `
[[services]]
name = "echo"
url = "http://127.0.0.1:9000"

[[routes]]
name = "all"
service = "echo"
paths = ["/"]
`;

const plugin = (extra = "") => `
[[plugins]]
name = "openid-connect"
[plugins.config]
issuer = "http://127.0.0.1:8080/realms/demo"
${extra}`;

const errorOf = (text: string): string => {
  try {
    parseConfig(text, "gateway.toml", pluginRegistry);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  return "";
};

describe("[cluster]", () => {
  it("is off by default, sharing every item once switched on", () => {
    const config = parseConfig(BASE, "gateway.toml", pluginRegistry);
    expect(config.cluster.strategy).toBe("off");
    expect(config.cluster.items).toEqual(["tokens", "dpop_replay", "keys", "introspection"]);
    expect(config.cluster.dpop_replay_fallback).toBe("local");
  });

  it('needs a redis:// or rediss:// URL when strategy = "redis"', () => {
    expect(errorOf(`[cluster]\nstrategy = "redis"\n${BASE}`)).toContain("cluster.redis_url: missing required key");
    expect(errorOf(`[cluster]\nstrategy = "redis"\nredis_url = "http://127.0.0.1:6379"\n${BASE}`)).toContain(
      "cluster.redis_url: expected a redis:// or rediss:// URL",
    );
    expect(errorOf(`[cluster]\nstrategy = "redis"\nredis_url = "rediss://user:pw@redis.internal:6380/2"\nitems = ["tokens"]\n${BASE}`)).toBe("");
  });

  it("needs keys_secret, equal on every node, when the signing keys are shared", () => {
    const message = errorOf(`[cluster]\nstrategy = "redis"\nredis_url = "redis://127.0.0.1:6379"\n${BASE}`);
    expect(message).toContain("cluster.keys_secret: missing required key");
    expect(message).toContain("equal on every node");
    expect(errorOf(`[cluster]\nstrategy = "redis"\nredis_url = "redis://127.0.0.1:6379"\nkeys_secret = "short"\n${BASE}`)).toContain(
      "cluster.keys_secret: expected at least 32 characters",
    );
    expect(errorOf(`[cluster]\nstrategy = "redis"\nredis_url = "redis://127.0.0.1:6379"\nitems = ["tokens", "dpop_replay"]\n${BASE}`)).toBe("");
  });

  it("rejects unknown keys and items", () => {
    expect(errorOf(`[cluster]\nstrategy = "redis"\nredis_uri = "redis://x"\n${BASE}`)).toContain(
      'cluster.redis_uri: unknown key (did you mean "redis_url"?)',
    );
    expect(errorOf(`[cluster]\nitems = ["sessions"]\n${BASE}`)).toContain("cluster.items[0]");
  });

  it("says that cache_tokens_salt must be set, and equal on every node, when tokens are shared", () => {
    const message = errorOf(`[cluster]\nstrategy = "redis"\nredis_url = "redis://127.0.0.1:6379"\n${BASE}${plugin()}`);
    expect(message).toContain("plugins[0].config.cache_tokens_salt: missing required key");
    expect(message).toContain("equal on every node");
  });

  it("accepts a plugin with its salt, one without a token cache, and no salt when tokens stay local", () => {
    const redis = `[cluster]\nstrategy = "redis"\nredis_url = "redis://127.0.0.1:6379"\nkeys_secret = "${"k".repeat(32)}"\n`;
    expect(errorOf(`${redis}${BASE}${plugin('cache_tokens_salt = "0123456789abcdef0123"')}`)).toBe("");
    expect(errorOf(`${redis}${BASE}${plugin("cache_tokens = false")}`)).toBe("");
    expect(errorOf(`${redis}items = ["dpop_replay"]\n${BASE}${plugin()}`)).toBe("");
    expect(errorOf(`${BASE}${plugin()}`)).toBe("");
  });
});
