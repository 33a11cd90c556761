import { describe, expect, it } from "bun:test";
import { createLogger, createLogSampler } from "../../src/log.ts";

describe("log sampling", () => {
  it("admits `limit` lines of one event per window, then reports how many it dropped", () => {
    let t = 0;
    const sampler = createLogSampler(3, 1000, () => t);
    expect([1, 2, 3, 4, 5].map(() => sampler.admit("error x"))).toEqual([0, 0, 0, undefined, undefined]);
    expect(sampler.admit("error y")).toBe(0);
    t = 1000;
    expect(sampler.admit("error x")).toBe(2);
    expect(sampler.admit("error x")).toBe(0);
  });

  it("writes at most 20 lines a second of one error event, and never samples the access log", () => {
    const lines: Record<string, unknown>[] = [];
    const log = createLogger("info", (l) => void lines.push(JSON.parse(l)));
    for (let i = 0; i < 1000; i++) log.error("upstream.unavailable", { i });
    for (let i = 0; i < 1000; i++) log.info("http.request", { i });
    const errors = lines.filter((l) => l.event === "upstream.unavailable").length;
    expect(errors).toBeGreaterThanOrEqual(20);
    expect(errors).toBeLessThanOrEqual(40);
    expect(lines.filter((l) => l.event === "http.request").length).toBe(1000);
  });

  it("shares the bound between a logger and its children", () => {
    const lines: string[] = [];
    const log = createLogger("info", (l) => void lines.push(l));
    const child = log.child({ plugin: "p" });
    for (let i = 0; i < 50; i++) (i % 2 ? log : child).warn("same.event");
    expect(lines.length).toBeLessThanOrEqual(40);
  });
});
