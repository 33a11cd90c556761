/**
 * WebSocket relay throughput: one caller and the test suites' echo upstream through the gateway
 * (no plugin), on the plain and the mTLS listener. Prints MB/s and the gateway's CPU seconds.
 *   bun bench/websocket-relay.ts [--runtime binary|bun|deno] [--listener plain|mtls] [--scenario up|down|big] [--rounds N]
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ensureCerts } from "../test/support/certs.ts";
import { startGateway, type GatewayRuntime } from "../test/support/gateway-process.ts";
import { tlsServerConfig } from "../test/support/tls-gateway.ts";
import { BURST_COUNT, echoRoutes, startWebSocketUpstream } from "../test/support/websocket-cases.ts";

const { values } = parseArgs({
  options: {
    runtime: { type: "string", default: "binary" },
    listener: { type: "string", default: "plain,mtls" },
    scenario: { type: "string", default: "up,down,big" },
    rounds: { type: "string", default: "3" },
    count: { type: "string", default: "640" },
  },
});

const certs = ensureCerts();
const pem = (name: string) => readFileSync(join(certs, name), "utf8");
const upstream = startWebSocketUpstream();
const gw = await startGateway({
  runtime: values.runtime as GatewayRuntime,
  config: `${tlsServerConfig()}\n${echoRoutes(upstream, { ws: ["/ws", ["http", "https", "ws", "wss"]] })}`.replace(
    "read_timeout = 5000",
    `read_timeout = ${process.env.READ_TIMEOUT ?? 5000}`,
  ),
});
const pid = Number((await Bun.$`pgrep -f ${gw.configPath}`.text()).trim().split("\n")[0]);
const TICK = 100;
function cpuSeconds(): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICK;
}

function open(listener: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws =
      listener === "direct"
        ? new WebSocket(`ws://127.0.0.1:${upstream.port}/socket`)
        : listener === "mtls"
          ? new WebSocket(`wss://localhost:${gw.ports.proxyTls}/ws`, {
              tls: { ca: pem("ca.crt"), cert: pem("client.crt"), key: pem("client.key") },
            } as never)
          : new WebSocket(`ws://127.0.0.1:${gw.ports.proxy}/ws`);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error("the WebSocket did not open"));
  });
}
const next = (ws: WebSocket) => new Promise<unknown>((resolve) => ws.addEventListener("message", (e) => resolve(e.data), { once: true }));

/** Bytes moved by one run of the scenario on `ws`. */
async function run(scenario: string, ws: WebSocket): Promise<number> {
  const count = Number(values.count);
  if (scenario === "up" || scenario === "up-slow") {
    // caller -> upstream: `count` numbered 64 KiB messages at once, then the upstream's tally
    // (up-slow: the upstream stops reading for 1.5 s first, as in the backpressure tests).
    if (scenario === "up-slow") ws.send("read-slowly");
    for (let i = 0; i < count; i++) {
      const m = new Uint8Array(64 * 1024);
      new DataView(m.buffer).setUint32(0, i);
      ws.send(m);
    }
    const reply = next(ws);
    ws.send("received");
    const got = await reply;
    if (got !== String(count)) throw new Error(`the upstream got ${got} of ${count}`);
    return count * 64 * 1024;
  }
  if (scenario === "down") {
    let n = 0;
    const done = new Promise<void>((resolve) => {
      ws.onmessage = () => {
        if (++n === BURST_COUNT) resolve();
      };
    });
    ws.send("burst");
    await done;
    ws.onmessage = null;
    return BURST_COUNT * 64 * 1024;
  }
  const big = new Uint8Array(10 * 1024 * 1024);
  const reply = next(ws);
  ws.send(big);
  const echoed = (await reply) as ArrayBuffer;
  if (echoed.byteLength !== big.length) throw new Error("short echo");
  return 2 * big.length;
}

try {
  for (const listener of values.listener.split(",")) {
    for (const scenario of values.scenario.split(",")) {
      for (let r = 0; r < Number(values.rounds); r++) {
        const ws = await open(listener);
        const cpu0 = cpuSeconds();
        const own0 = process.cpuUsage();
        const t0 = performance.now();
        const bytes = await run(scenario, ws);
        const seconds = (performance.now() - t0) / 1000;
        const cpu = cpuSeconds() - cpu0;
        const own = process.cpuUsage(own0);
        ws.close();
        const load = readFileSync("/proc/loadavg", "utf8").split(" ")[0];
        console.log(
          `${values.runtime} ${listener} ${scenario}: ${(bytes / 2 ** 20).toFixed(0)} MiB in ${seconds.toFixed(2)} s = ${(bytes / 2 ** 20 / seconds).toFixed(1)} MiB/s, gateway CPU ${cpu.toFixed(2)} s, caller+upstream CPU ${((own.user + own.system) / 1e6).toFixed(2)} s (load ${load})`,
        );
      }
    }
  }
} finally {
  await gw.stop();
  upstream.stop();
}
