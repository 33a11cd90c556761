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
});
