/**
 * In-process cost of the gateway's own request path, without sockets: the proxy app built from a
 * config, and an upstream fetch that answers at once. Compares source trees side by side
 * (interleaved rounds, medians), so a change can be judged on a noisy machine.
 * With --pool, the upstream is the gateway's own HTTP/1.1 client (src/upstream/pool.ts) over an
 * in-memory socket that answers nginx's bytes, as the binary proxies (no syscalls measured).
 * Run: bun bench/micro.ts [--pool] [--only] [dir ...]   (default: this checkout; --only leaves out the
 * bare baseline, e.g. to profile the gateway alone with bun --cpu-prof and bench/profile-parts.ts)
 */
import { resolve } from "node:path";
import { pluginRegistry } from "../src/plugins/registry.ts";

const pooled = Bun.argv.includes("--pool");
const dirs = Bun.argv.slice(2).filter((a) => !/^\d+$/.test(a) && !a.startsWith("--"));
if (!dirs.length) dirs.push(resolve(import.meta.dir, ".."));
const perRound = 20_000;
const rounds = 9;
const TOML = `[server]\naccess_log = false\n[[services]]\nname = "up"\nurl = "http://127.0.0.1:9"\n[[routes]]\nname = "all"\nservice = "up"\npaths = ["/"]\n`;
const upstreamHeaders = {
  server: "nginx/1.22.1",
  date: new Date().toUTCString(),
  "content-type": "text/plain",
  "content-length": "2",
  connection: "keep-alive",
};
const upstreamFetch = async () => new Response("ok", { headers: upstreamHeaders });
const upstreamBytes = new TextEncoder().encode(
  `HTTP/1.1 200 OK\r\n${Object.entries(upstreamHeaders)
    .map(([k, v]) => `${k[0]!.toUpperCase()}${k.slice(1)}: ${v}`)
    .join("\r\n")}\r\n\r\nok`,
);
/** A connection that answers every request head with the upstream's bytes, on the next microtask. */
const memoryConnect = async (_options: unknown, events: { data(chunk: Uint8Array): void }) => ({
  events,
  closed: false,
  write(data: Uint8Array | string) {
    if (typeof data !== "string" || data.endsWith("\r\n\r\n")) queueMicrotask(() => events.data(upstreamBytes.slice()));
    return true;
  },
  pause() {},
  resume() {},
  destroy() {},
});
const conn = { remoteAddress: "127.0.0.1", localPort: 8000, tls: false };
const reqHeaders = { host: "127.0.0.1:8000", "user-agent": "wrk", accept: "*/*" };

type Handler = (req: Request) => Response | Promise<Response>;
async function load(dir: string): Promise<Handler> {
  const { parseConfig } = await import(`${dir}/src/config/load.ts`);
  const { createProxyApp } = await import(`${dir}/src/gateway/app.ts`);
  const { createLogger } = await import(`${dir}/src/log.ts`);
  const log = createLogger("error");
  const deps: Record<string, unknown> = { log, pluginContext: { log }, upstreamFetch: () => upstreamFetch };
  if (pooled) {
    const { ConnectionPool } = await import(`${dir}/src/upstream/pool.ts`);
    deps.upstreamPool = () =>
      new ConnectionPool({ hostname: "127.0.0.1", port: 9 }, memoryConnect, { poolSize: 256, maxRequests: 0, idleTimeoutMs: 60_000 });
  }
  try {
    const { Metrics } = await import(`${dir}/src/metrics.ts`);
    deps.metrics = new Metrics("micro", "bun");
  } catch {}
  const app = await createProxyApp(parseConfig(TOML, "/tmp/micro.toml", pluginRegistry), deps);
  return (req) => app.fetch(req, conn);
}

const bare: Handler = async () => {
  const r = await upstreamFetch();
  return new Response(r.body, { status: r.status, headers: r.headers });
};

async function round(handler: Handler, n: number): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < n; i += 50) {
    const pending: Promise<unknown>[] = [];
    for (let j = 0; j < 50; j++) {
      pending.push(Promise.resolve(handler(new Request("http://127.0.0.1:8000/bench?x=1", { headers: reqHeaders }))).then((r) => r.arrayBuffer()));
    }
    await Promise.all(pending);
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}

const handlers: [string, Handler][] = Bun.argv.includes("--only") ? [] : [["bare", bare]];
for (const d of dirs) handlers.push([d, await load(d)]);
const samples = handlers.map(() => [] as number[]);
for (const [, h] of handlers) await round(h, perRound);
for (let r = 0; r < rounds; r++) for (const [i, [, h]] of handlers.entries()) samples[i]!.push(await round(h, perRound));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const base = handlers[0]![0] === "bare" ? median(samples[0]!) : 0;
for (const [i, [name]] of handlers.entries()) {
  const m = median(samples[i]!);
  console.log(`${name.padEnd(30)} ${m.toFixed(2).padStart(7)} µs/req CPU${base && i ? `  (own cost ${(m - base).toFixed(2)} µs)` : ""}`);
}
