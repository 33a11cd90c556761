/**
 * A caller who can make every request fail cannot flood the log (issue 13, item 7): one
 * error event is written at most 20 times a second, the next line says how many were dropped,
 * while the access log keeps one line per request. Compiled binary and Deno.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { freePort, simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { waitUntil } from "../support/wait.ts";

for (const runtime of ["binary", "deno"] as const) {
  describe(`the error log under a flood on ${runtime}`, () => {
    let gw: GatewayProcess;
    beforeAll(async () => {
      // Nothing listens there: every request is a 502 and an `upstream.unavailable` error line.
      gw = await startGateway({
        runtime,
        config: simpleConfig(`http://127.0.0.1:${await freePort()}`).replace("read_timeout = 2000", "read_timeout = 2000\nretries = 0"),
      });
    }, 60_000);
    afterAll(async () => {
      await gw?.stop();
    });

    it("writes a bounded number of identical error lines, and counts the rest", async () => {
      const started = performance.now();
      const statuses = await Promise.all(Array.from({ length: 300 }, () => fetch(`${gw.proxyUrl}/x`).then((r) => r.status)));
      const seconds = (performance.now() - started) / 1000;
      expect(new Set(statuses)).toEqual(new Set([502]));
      await gw.waitForLog((l) => l.event === "http.request" && l.status === 502);
      await Bun.sleep(1100);
      await fetch(`${gw.proxyUrl}/x`);
      const line = await gw.waitForLog((l) => l.event === "upstream.unavailable" && typeof l.suppressed === "number");
      const errors = gw.logs().filter((l) => l.event === "upstream.unavailable");
      expect(errors.length).toBeLessThanOrEqual(20 * (Math.ceil(seconds) + 2));
      expect(errors.length + errors.reduce((n, l) => n + (l.suppressed ?? 0), 0)).toBe(301);
      expect(line.suppressed).toBeGreaterThan(0);
      // Access-log lines are batched per event-loop turn: the last one may follow its error line.
      const accessLines = () => gw.logs().filter((l) => l.event === "http.request").length;
      await waitUntil("an access-log line for each of the 301 requests", () => accessLines() >= 301);
      expect(accessLines()).toBe(301);
    });
  });
}
