/**
 * In-process cost of the gateway's own request path, without sockets: the proxy app built from a
 * config, and an upstream fetch that answers at once. Compares source trees side by side
 * (interleaved rounds, medians), so a change can be judged on a noisy machine.
 * With --pool, the upstream is the gateway's own HTTP/1.1 client (src/upstream/pool.ts) over an
 * in-memory socket that answers nginx's bytes, as the binary proxies (no syscalls measured).
 * Run: bun bench/micro.ts [--pool] [--only] [--quick] [dir ...]   (default: this checkout; --only leaves
 * out the bare baseline, e.g. to profile the gateway alone with bun --cpu-prof and bench/profile-parts.ts;
 * --quick: 3 shorter rounds, a spot check)
 * The harness (loading a tree, timing, medians) is bench/lib/micro-harness.ts.
 */
import { cpuPerRequest, type Handler, interleavedMedians, loadApp, microArgs, tableRow, upstreamFetch, wrkHeaders } from "./lib/micro-harness.ts";
import { memoryConnect } from "./lib/memory-upstream.ts";

const args = microArgs();
const pooled = args.flags.has("--pool");
const perRound = args.requests(20_000);
const TOML = `[server]\naccess_log = false\n[[services]]\nname = "up"\nurl = "http://127.0.0.1:9"\n[[routes]]\nname = "all"\nservice = "up"\npaths = ["/"]\n`;

async function load(dir: string): Promise<Handler> {
  if (!pooled) return loadApp(dir, TOML);
  const { ConnectionPool } = await import(`${dir}/src/upstream/pool.ts`);
  const upstreamPool = () =>
    new ConnectionPool({ hostname: "127.0.0.1", port: 9 }, memoryConnect, { poolSize: 256, maxRequests: 0, idleTimeoutMs: 60_000 });
  return loadApp(dir, TOML, { upstreamPool });
}

const bare: Handler = async () => {
  const r = await upstreamFetch();
  return new Response(r.body, { status: r.status, headers: r.headers });
};

const round = (handler: Handler) =>
  cpuPerRequest(perRound, () =>
    Promise.resolve(handler(new Request("http://127.0.0.1:8000/bench?x=1", { headers: wrkHeaders }))).then((r) => r.arrayBuffer()),
  );

const handlers: [string, Handler][] = args.flags.has("--only") ? [] : [["bare", bare]];
for (const d of args.dirs) handlers.push([d, await load(d)]);
const medians = await interleavedMedians(
  handlers,
  args.rounds,
  ([, h]) => round(h),
  ([, h]) => round(h),
);
const base = handlers[0]![0] === "bare" ? medians[0]! : 0;
for (const [i, [name]] of handlers.entries()) {
  const m = medians[i]!;
  console.log(tableRow(name.padEnd(30), m, base && i ? `  (own cost ${(m - base).toFixed(2)} µs)` : ""));
}
