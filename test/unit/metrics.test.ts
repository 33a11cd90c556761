import { describe, expect, it } from "bun:test";
import { Metrics } from "../../src/metrics.ts";
import { Gauge } from "../../src/prom-client.ts";

const families = (text: string) => [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]);

describe("Metrics", () => {
  it("builds the process metrics on the first scrape, right after the gateway's own", async () => {
    const metrics = new Metrics("1.0.0", "test");
    const names = families(await metrics.text());
    expect(names.indexOf("process_cpu_user_seconds_total")).toBe(names.indexOf("gateway_build_info") + 1);
  });

  it("keeps the process metrics in that place when metrics were registered after construction", async () => {
    const metrics = new Metrics("1.0.0", "test");
    new Gauge({ name: "gateway_later", help: "Registered later.", registers: [metrics.registry] });
    const names = families(await metrics.text());
    expect(names.indexOf("process_cpu_user_seconds_total")).toBe(names.indexOf("gateway_build_info") + 1);
    expect(names.at(-1)).toBe("gateway_later");
    expect(families(await metrics.text())).toEqual(names);
  });

  describe("when the process metrics cannot be built", () => {
    const failing = () => Promise.reject(new Error("cannot load prom-client/lib/defaultMetrics.js"));

    it("serves the gateway's own series, reports the failure once and tries again at the next scrape", async () => {
      const reported: unknown[] = [];
      let attempts = 0;
      let fail = true;
      const metrics = new Metrics("1.0.0", "test", {
        onDefaultMetricsError: (error) => reported.push(error),
        importDefaultMetrics: async () => {
          attempts++;
          if (fail) return failing();
          return (await import("prom-client/lib/defaultMetrics.js")).default;
        },
      });
      expect(families(await metrics.text())).toContain("gateway_build_info");
      expect(families(await metrics.text())).not.toContain("process_cpu_user_seconds_total");
      expect(attempts).toBe(2);
      expect(reported).toHaveLength(1);
      expect((reported[0] as Error).message).toContain("defaultMetrics");
      fail = false;
      expect(families(await metrics.text())).toContain("process_cpu_user_seconds_total");
      expect(reported).toHaveLength(1);
    });

    it("never leaves a rejected promise to the caller that starts them without a scrape", async () => {
      const metrics = new Metrics("1.0.0", "test", { importDefaultMetrics: failing });
      await expect(metrics.defaultMetrics()).resolves.toBeUndefined();
    });
  });
});
