import { describe, expect, it } from "bun:test";
import { pluginRegistry } from "../../../src/plugins/registry.ts";
import { LocalCounters } from "../../../src/plugins/rate-limiting/local-counters.ts";
import { period } from "../../../src/plugins/rate-limiting/windows.ts";
import { errorOf, MINIMAL_CONFIG, parseToml } from "../../support/config.ts";

const base = `${MINIMAL_CONFIG}
[[plugins]]
name = "rate-limiting"
[plugins.config]
`;

describe("rate-limiting settings", () => {
  it("take Kong's defaults", () => {
    const config = parseToml(`${base}minute = 5\n`).plugins[0]!.config;
    expect(config).toMatchObject({
      minute: 5,
      limit_by: "consumer",
      policy: "local",
      fault_tolerant: true,
      hide_client_headers: false,
      error_code: 429,
      error_message: "API rate limit exceeded",
    });
  });

  it("refuse a limit without any window, naming the key", () => {
    expect(errorOf(`${base}limit_by = "ip"\n`)).toContain(
      "plugins[0].config.minute: missing required key: at least one of 'second', 'minute', 'hour', 'day', 'month', 'year'",
    );
  });

  it("refuse a longer window allowing fewer requests than a shorter one, as Kong does", () => {
    expect(errorOf(`${base}second = 10\nminute = 5\n`)).toContain("plugins[0].config.minute: expected a limit not below 'second' (10)");
  });

  it("need header_name for limit_by header and path for limit_by path", () => {
    expect(errorOf(`${base}minute = 5\nlimit_by = "header"\n`)).toContain("plugins[0].config.header_name: missing required key");
    expect(errorOf(`${base}minute = 5\nlimit_by = "path"\n`)).toContain("plugins[0].config.path: missing required key");
  });

  it("refuse Kong's database policy and a redis policy with no Redis to use", () => {
    expect(errorOf(`${base}minute = 5\npolicy = "cluster"\n`)).toContain("plugins[0].config.policy");
    expect(errorOf(`${base}minute = 5\npolicy = "redis"\n`)).toContain(
      "plugins[0].config.redis.host: missing required key: 'policy' \"redis\" needs 'redis.host'",
    );
    expect(parseToml(`${base}minute = 5\npolicy = "redis"\n[plugins.config.redis]\nhost = "127.0.0.1"\n`).plugins).toHaveLength(1);
  });
});

describe("rate-limiting windows", () => {
  const at = Date.UTC(2026, 11, 5, 10, 42, 17, 250);

  it("align to the clock in UTC", () => {
    expect(period("second", at)).toEqual({ start: Date.UTC(2026, 11, 5, 10, 42, 17), end: Date.UTC(2026, 11, 5, 10, 42, 18) });
    expect(period("minute", at)).toEqual({ start: Date.UTC(2026, 11, 5, 10, 42), end: Date.UTC(2026, 11, 5, 10, 43) });
    expect(period("hour", at).end).toBe(Date.UTC(2026, 11, 5, 11));
    expect(period("day", at)).toEqual({ start: Date.UTC(2026, 11, 5), end: Date.UTC(2026, 11, 6) });
  });

  it("make months and years calendar periods", () => {
    expect(period("month", at)).toEqual({ start: Date.UTC(2026, 11, 1), end: Date.UTC(2027, 0, 1) });
    expect(period("year", at)).toEqual({ start: Date.UTC(2026, 0, 1), end: Date.UTC(2027, 0, 1) });
  });
});

describe("the local policy's counters", () => {
  it("count exactly and block without counting once a window is full", () => {
    const counters = new LocalCounters();
    const results = Array.from({ length: 5 }, () => {
      const r = counters.count("a", [3, 10], [60_000, 3_600_000], 1000);
      return { blocked: r.blocked, counts: [...r.counts] };
    });
    expect(results.map((r) => r.blocked)).toEqual([false, false, false, true, true]);
    expect(results[2]!.counts).toEqual([3, 3]);
    expect(results[4]!.counts).toEqual([3, 3]); // a refused request counts in no window
  });

  it("start a window afresh when it turns, and keep callers apart", () => {
    const counters = new LocalCounters();
    expect(counters.count("a", [1], [60_000], 1000).blocked).toBe(false);
    expect(counters.count("a", [1], [60_000], 2000).blocked).toBe(true);
    expect(counters.count("b", [1], [60_000], 2000).blocked).toBe(false);
    expect(counters.count("a", [1], [120_000], 60_000).blocked).toBe(false);
  });

  it("turn each window on its own: a new minute does not reset the hour", () => {
    const counters = new LocalCounters();
    counters.count("a", [1, 2], [60_000, 3_600_000], 0);
    expect(counters.count("a", [1, 2], [120_000, 3_600_000], 60_000)).toMatchObject({ blocked: false, counts: [1, 2] });
    expect(counters.count("a", [1, 2], [180_000, 3_600_000], 120_000).blocked).toBe(true);
  });

  it("stay bounded, dropping the oldest callers first", () => {
    const counters = new LocalCounters(3);
    for (const key of ["a", "b", "c", "d"]) counters.count(key, [1], [60_000], 0);
    expect(counters.size).toBe(3);
    expect(counters.count("a", [1], [60_000], 0).blocked).toBe(false);
  });
});

describe("rate-limiting warnings", () => {
  it("say that the local policy counts per worker", async () => {
    const { configWarnings } = await import("../../../src/config/warnings.ts");
    const config = parseToml(`[server]\nworkers = 4\n${base}minute = 5\n`);
    expect(configWarnings(config, pluginRegistry).join("\n")).toContain("each worker counts on its own");
  });
});
