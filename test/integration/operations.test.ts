/**
 * Running it on a bad day: hot reload without dropped requests, invalid configs kept out,
 * Prometheus metrics read by a real parser, readiness.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
// @ts-expect-error: the parser ships no types
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { freePort, simpleConfig, startGateway } from "../support/gateway-process.ts";
import { SERVICE_SECRET, startIdpProcess } from "../support/idp-process.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

let upstream: EchoUpstream;
beforeAll(() => {
  upstream = startEchoUpstream();
});
afterAll(() => upstream?.stop());

describe("hot reload", () => {
  it("loses no request while reloading 20 times under load", async () => {
    const gw = await startGateway({ config: simpleConfig(`${upstream.url}/`) });
    try {
      let ok = 0;
      const failures: string[] = [];
      let running = true;
      const client = async () => {
        while (running) {
          try {
            const res = await fetch(`${gw.proxyUrl}/anything`);
            await res.arrayBuffer();
            if (res.status === 200) ok++;
            else failures.push(`status ${res.status}`);
          } catch (e) {
            failures.push(String(e));
          }
        }
      };
      const clients = Array.from({ length: 8 }, client);
      const original = readFileSync(gw.configPath, "utf8");
      for (let i = 0; i < 20; i++) {
        // Alternate between two valid configs so every reload really swaps something.
        writeFileSync(gw.configPath, i % 2 ? original : original + `\n[[routes]]\nname = "extra"\nservice = "echo"\npaths = ["/extra"]\n`);
        const res = await fetch(`${gw.adminUrl}/config/reload`, { method: "POST", headers: { "x-admin": "test" } });
        expect(res.status).toBe(200);
        await Bun.sleep(50);
      }
      running = false;
      await Promise.all(clients);
      expect(failures).toEqual([]);
      expect(ok).toBeGreaterThan(100);
    } finally {
      await gw.stop();
    }
  }, 30_000);

  it("keeps the caches of plugins whose entry did not change: a cached token survives reloads", async () => {
    const idp = await startIdpProcess();
    const gw = await startGateway({
      config: simpleConfig(`${upstream.url}/`) + `\n[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "${idp.issuer}"\n`,
    });
    try {
      const call = () => fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: `Basic ${btoa(`service:${SERVICE_SECRET}`)}` } });
      expect((await call()).status).toBe(200);
      const before = (await idp.stats()).token.total;
      const original = readFileSync(gw.configPath, "utf8");
      for (let i = 0; i < 3; i++) {
        // Another route changes; the plugin entry does not.
        writeFileSync(gw.configPath, original + `\n[[routes]]\nname = "extra${i}"\nservice = "echo"\npaths = ["/extra${i}"]\n`);
        expect((await fetch(`${gw.adminUrl}/config/reload`, { method: "POST", headers: { "x-admin": "test" } })).status).toBe(200);
      }
      expect((await call()).status).toBe(200);
      expect((await idp.stats()).token.total).toBe(before);
      const reloaded = gw.logs().filter((l) => l.event === "config.reloaded");
      expect(reloaded.at(-1)?.plugins_reused).toBe(1);
    } finally {
      await gw.stop();
      await idp.stop();
    }
  }, 30_000);

  it("keeps the running config when the new file is invalid, and says why like `check` does", async () => {
    const gw = await startGateway({ config: simpleConfig(`${upstream.url}/`) });
    try {
      const original = readFileSync(gw.configPath, "utf8");
      writeFileSync(gw.configPath, original.replace('paths = ["/"]', 'paths = ["nope"]'));
      const res = await fetch(`${gw.adminUrl}/config/reload`, { method: "POST", headers: { "x-admin": "test" } });
      expect(res.status).toBe(400);
      const { message } = (await res.json()) as { message: string };
      expect(message).toContain(`${gw.configPath}: invalid configuration`);
      expect(message).toContain("routes[0].paths[0]: expected a path starting with '/'");
      expect((await fetch(`${gw.proxyUrl}/anything`)).status).toBe(200);
      const logged = await gw.waitForLog((l) => l.event === "config.reload_failed");
      expect(logged.message).toBe(message);
    } finally {
      await gw.stop();
    }
  });

  it("reloads on SIGHUP", async () => {
    const gw = await startGateway({ config: simpleConfig(`${upstream.url}/`).replace('paths = ["/"]', 'paths = ["/a"]') });
    try {
      expect((await fetch(`${gw.proxyUrl}/b`)).status).toBe(404);
      writeFileSync(gw.configPath, readFileSync(gw.configPath, "utf8").replace('paths = ["/a"]', 'paths = ["/a", "/b"]'));
      gw.signal("SIGHUP");
      await gw.waitForLog((l) => l.event === "config.reloaded");
      expect((await fetch(`${gw.proxyUrl}/b`)).status).toBe(200);
    } finally {
      await gw.stop();
    }
  });

  it("reloads by itself when the file changes and watch = true", async () => {
    const gw = await startGateway({
      config: simpleConfig(`${upstream.url}/`).replace("[server]\n", "[server]\nwatch = true\n").replace('paths = ["/"]', 'paths = ["/a"]'),
    });
    try {
      writeFileSync(gw.configPath, readFileSync(gw.configPath, "utf8").replace('paths = ["/a"]', 'paths = ["/c"]'));
      await gw.waitForLog((l) => l.event === "config.reloaded");
      expect((await fetch(`${gw.proxyUrl}/c`)).status).toBe(200);
      expect((await fetch(`${gw.proxyUrl}/a`)).status).toBe(404);
    } finally {
      await gw.stop();
    }
  });

  it("rebinds a listener whose address changed and keeps the others", async () => {
    const gw = await startGateway({ config: simpleConfig(`${upstream.url}/`) });
    try {
      const newPort = await freePort();
      writeFileSync(gw.configPath, readFileSync(gw.configPath, "utf8").replace(`127.0.0.1:${gw.ports.proxy}`, `127.0.0.1:${newPort}`));
      expect((await fetch(`${gw.adminUrl}/config/reload`, { method: "POST", headers: { "x-admin": "test" } })).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${newPort}/anything`)).status).toBe(200);
      await expect(fetch(`${gw.proxyUrl}/anything`)).rejects.toThrow();
      expect((await fetch(`${gw.adminUrl}/status`)).status).toBe(200);
    } finally {
      await gw.stop();
    }
  });
});

describe("metrics and health", () => {
  it("exports Prometheus text that a real parser reads", async () => {
    const dead = await freePort();
    const gw = await startGateway({
      config:
        simpleConfig(`${upstream.url}/`) +
        `\n[[services]]\nname = "dead"\nurl = "http://127.0.0.1:${dead}/"\nretries = 0\n[[routes]]\nname = "dead"\nservice = "dead"\npaths = ["/dead"]\n`,
    });
    try {
      for (let i = 0; i < 3; i++) await (await fetch(`${gw.proxyUrl}/anything`)).arrayBuffer();
      await (await fetch(`${gw.proxyUrl}/dead`)).arrayBuffer();
      await fetch(`${gw.adminUrl}/config/reload`, { method: "POST", headers: { "x-admin": "test" } });
      const res = await fetch(`${gw.adminUrl}/metrics`);
      expect(res.headers.get("content-type")).toContain("text/plain");
      const families = parsePrometheusTextFormat(await res.text()) as {
        name: string;
        type: string;
        metrics: { labels?: Record<string, string>; value?: string; buckets?: Record<string, string>; count?: string }[];
      }[];
      const family = (name: string) => families.find((f) => f.name === name)!;
      const requests = family("gateway_http_requests_total");
      expect(requests.type).toBe("COUNTER");
      expect(requests.metrics.find((m) => m.labels?.route === "all" && m.labels?.status === "200")?.value).toBe("3");
      expect(requests.metrics.find((m) => m.labels?.route === "dead" && m.labels?.status === "502")?.value).toBe("1");
      expect(family("gateway_http_request_duration_seconds").type).toBe("HISTOGRAM");
      // This parser keeps a histogram's buckets but not its labels.
      expect(family("gateway_upstream_duration_seconds").metrics.some((m) => m.buckets?.["+Inf"] === "3")).toBe(true);
      expect(family("gateway_upstream_errors_total").metrics.find((m) => m.labels?.service === "dead")?.labels?.kind).toBe("unavailable");
      expect(family("gateway_config_reloads_total").metrics.find((m) => m.labels?.outcome === "success")?.value).toBe("1");
      expect(family("gateway_build_info").metrics[0]?.labels?.version).toMatch(/^\d+\.\d+\.\d+/);
    } finally {
      await gw.stop();
    }
  });

  it("answers /status/ready with 200 when every plugin can serve", async () => {
    const gw = await startGateway({ config: simpleConfig(`${upstream.url}/`) });
    try {
      const res = await fetch(`${gw.adminUrl}/status/ready`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ ready: true });
    } finally {
      await gw.stop();
    }
  });
});
