/**
 * `[server] workers = N`: one supervisor, N gateway processes sharing the proxy port
 * (SO_REUSEPORT). Against the real binary (or GATEWAY_RUNTIME), a real upstream, real sockets.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { request as httpRequest } from "node:http";
import { createServer, type Server } from "node:net";
import { freePort, simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

let upstream: EchoUpstream;
beforeAll(() => {
  upstream = startEchoUpstream();
});
afterAll(() => upstream?.stop());

const withWorkers = (n: number, config = simpleConfig(`${upstream.url}/`)) =>
  config.replace("shutdown_timeout = 5000", `shutdown_timeout = 5000\nworkers = ${n}`);

/** GET on a fresh connection each time, so the kernel picks a worker per request. */
function freshGet(url: string): Promise<number> {
  return new Promise((ok, fail) => {
    const req = httpRequest(url, { agent: false, headers: { connection: "close" } }, (res) => {
      res.resume();
      res.on("end", () => ok(res.statusCode ?? 0));
    });
    req.on("error", fail);
    req.end();
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Both workers have logged `gateway.started`; resolves with their pids by worker index. */
async function workerPids(gw: GatewayProcess, n: number): Promise<number[]> {
  for (let i = 0; i < n; i++) await gw.waitForLog((l) => l.event === "gateway.started" && l.worker === i);
  const started = gw.logs().filter((l) => l.event === "worker.started");
  return Array.from({ length: n }, (_, i) => started.filter((l) => l.worker === i).at(-1)!.pid as number);
}

describe("workers = 2", () => {
  it("serves requests from both worker processes, and the admin API from worker 0, which refuses a health mark only it would apply", async () => {
    const pool = `[[upstreams]]\nname = "pool"\n[[upstreams.targets]]\ntarget = "${new URL(upstream.url).host}"\n`;
    const gw = await startGateway({ config: withWorkers(2, simpleConfig(`${upstream.url}/`, pool)) });
    try {
      const pids = await workerPids(gw, 2);
      expect(new Set(pids).size).toBe(2);
      for (let i = 0; i < 60; i++) expect(await freshGet(`${gw.proxyUrl}/anything`)).toBe(200);
      const served = new Set(
        gw
          .logs()
          .filter((l) => l.event === "http.request")
          .map((l) => l.worker),
      );
      expect(served).toEqual(new Set([0, 1]));
      const admins = gw.logs().filter((l) => l.event === "listener.started" && l.listener === "admin");
      expect(admins.map((l) => l.worker)).toEqual([0]);
      expect((await fetch(`${gw.adminUrl}/status`)).status).toBe(200);
      // Health is per worker: a manual mark would reach worker 0 only, so it is refused.
      const mark = await fetch(`${gw.adminUrl}/upstreams/pool/targets/${new URL(upstream.url).host}/unhealthy`, { method: "PUT" });
      expect(mark.status).toBe(409);
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  }, 30_000);

  it("stops every worker on SIGTERM, gracefully, and exits 0", async () => {
    const gw = await startGateway({ config: withWorkers(2) });
    const pids = await workerPids(gw, 2);
    expect(pids.every(alive)).toBe(true);
    expect(await gw.stop()).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
    const exited = gw.logs().filter((l) => l.event === "worker.exited");
    expect(exited.map((l) => l.code).sort()).toEqual([0, 0]);
  }, 30_000);

  it("restarts a worker that crashed, and says so in the log", async () => {
    const gw = await startGateway({ config: withWorkers(2) });
    try {
      const [, victim] = await workerPids(gw, 2);
      process.kill(victim!, "SIGKILL");
      const crashed = await gw.waitForLog((l) => l.event === "worker.crashed" && l.pid === victim);
      expect(crashed).toMatchObject({ worker: 1, signal: "SIGKILL" });
      expect(crashed.restart_in_ms).toBeGreaterThan(0);
      const again = await gw.waitForLog((l) => l.event === "worker.started" && l.worker === 1 && l.launch === 2);
      expect(again.pid).not.toBe(victim);
      const restarted = () => gw.logs().filter((l) => l.event === "gateway.started" && l.worker === 1).length === 2;
      await gw.waitForLog((l) => l.event === "gateway.started" && restarted());
      for (let i = 0; i < 10; i++) expect(await freshGet(`${gw.proxyUrl}/anything`)).toBe(200);
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  }, 30_000);

  it("exits 3 without restarting when a worker cannot bind the proxy port", async () => {
    const port = await freePort();
    // An exclusive listener (no SO_REUSEPORT) on the port the workers want.
    const blocker: Server = createServer();
    await new Promise<void>((ok) => blocker.listen({ host: "127.0.0.1", port, exclusive: true }, ok));
    try {
      const gw = await startGateway({ config: withWorkers(2).replace("127.0.0.1:{{proxy}}", `127.0.0.1:${port}`), waitForAdmin: false });
      expect(await gw.exited).toBe(3);
      expect(gw.logs().some((l) => l.event === "worker.start_failed")).toBe(true);
      expect(gw.logs().some((l) => l.event === "worker.crashed")).toBe(false);
    } finally {
      blocker.close();
    }
  }, 30_000);

  it("refuses port 0 for the proxy, which would give every worker a port of its own", async () => {
    const gw = await startGateway({ config: withWorkers(2).replace("127.0.0.1:{{proxy}}", "127.0.0.1:0"), waitForAdmin: false });
    expect(await gw.exited).toBe(1);
    expect(gw.output.join("\n")).toContain("server.proxy_listen: expected a fixed port when 'workers' is more than 1");
  }, 30_000);
});
