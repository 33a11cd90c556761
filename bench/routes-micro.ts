/**
 * Issue 19's req/s question in process: does the gateway with 11 000 generated routes spend more
 * CPU per request on its first, middle and last route than the 1-route gateway? Each config runs
 * in its own child process (its own heap, so a larger old generation's GC cost shows), on the
 * gateway's own HTTP/1.1 client over an in-memory upstream (bench/lib/memory-upstream.ts). The
 * parent asks them for runs in pairs: each route of the larger config next to the 1-route config,
 * the order alternating, each run after `--settle` requests not counted (a process that sat idle
 * first pays its idle-time GC and cold caches); it prints the medians of the CPU µs per request
 * (user + system of the whole process, GC and JIT threads included) and of the pairs' ratios.
 * With --same-process both apps live in one process (same heap): what is left is the routes' code.
 *
 *   bun bench/routes-micro.ts [--rounds 9] [--requests 20000] [--settle 5000] [--same-process] [--sizes 1,11000] [--ballast-mb 15] [dir]
 *   (--ballast-mb: the first config's process also keeps that many MB of plain objects alive)
 */
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { pluginRegistry } from "../src/plugins/registry.ts";
import { generateRoutes, probe, routesToml } from "./lib/generated-routes.ts";
import { memoryConnect } from "./lib/memory-upstream.ts";
import { upstreamFetch } from "./lib/micro-harness.ts";

const argv = Bun.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
};
const dir = resolve(argv.find((a, i) => !a.startsWith("--") && !argv[i - 1]?.startsWith("--")) ?? resolve(import.meta.dir, ".."));
const rounds = Number(arg("--rounds", "9"));
const perRound = Number(arg("--requests", "20000"));
const sizes = arg("--sizes", "1,11000").split(",").map(Number);
const settle = Number(arg("--settle", "5000"));

type Handler = (req: Request) => Promise<Response> | Response;
interface Probe {
  readonly name: string;
  readonly url: string;
  readonly headers: Record<string, string>;
}

/** The gateway app for `size` generated routes (as bench/routes.ts writes them), and its probes. */
async function gateway(size: number): Promise<{ handler: Handler; probes: Probe[] }> {
  const { parseConfig } = await import(`${dir}/src/config/load.ts`);
  const { createProxyApp } = await import(`${dir}/src/gateway/app.ts`);
  const { createLogger } = await import(`${dir}/src/log.ts`);
  const { ConnectionPool } = await import(`${dir}/src/upstream/pool.ts`);
  const { Metrics } = await import(`${dir}/src/metrics.ts`);
  const log = createLogger("error");
  const routes = generateRoutes(size, size > 1 ? 1 / 11 : 0);
  const config = parseConfig(routesToml(routes, "http://127.0.0.1:9"), `/tmp/routes-${size}.toml`, pluginRegistry);
  const app = await createProxyApp(config, {
    log,
    pluginContext: { log },
    metrics: new Metrics("micro", "bun"),
    upstreamFetch: () => upstreamFetch,
    upstreamPool: () =>
      new ConnectionPool({ hostname: "127.0.0.1", port: 9 }, memoryConnect, { poolSize: 256, maxRequests: 0, idleTimeoutMs: 60_000 }),
  });
  const conn = { remoteAddress: "127.0.0.1", remotePort: 40000, localAddress: "127.0.0.1", localPort: 8000, tls: false };
  const picks: [string, number][] =
    size === 1
      ? [["last", 0]]
      : [
          ["first", 0],
          ["middle", Math.floor(size / 2)],
          ["last", size - 1],
        ];
  const probes = picks.map(([name, i]) => {
    const p = probe(routes, i);
    return { name, url: `http://127.0.0.1:8000${p.path}`, headers: { host: p.host, "user-agent": "wrk", accept: "*/*" } };
  });
  return { handler: (req) => app.fetch(req, conn), probes };
}

/** CPU µs per request over `n` requests, 50 in flight (as wrk -c50). */
async function round(handler: Handler, p: Probe, n: number): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < n; i += 50) {
    const pending: Promise<unknown>[] = [];
    for (let j = 0; j < 50; j++) {
      pending.push(
        Promise.resolve(handler(new Request(p.url, { headers: p.headers }))).then((r) => {
          if (r.status !== 200) throw new Error(`${p.name}: ${r.status}`);
          return r.arrayBuffer();
        }),
      );
    }
    await Promise.all(pending);
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}

const heapMb = async () => {
  Bun.gc(true);
  const { heapStats } = await import("bun:jsc");
  return Math.round((heapStats().heapSize / 1024 / 1024) * 10) / 10;
};

/** ~`mb` MB of small live objects, as a config's routes keep: a heap as large without the routes. */
function ballast(mb: number): unknown[] {
  const kept: unknown[] = [];
  for (let i = 0; i < mb * 8_000; i++) kept.push({ name: `b${i}`, paths: [`/b${i}/api`], n: i, map: i % 4 === 0 ? new Map([[i, i]]) : undefined });
  return kept;
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A child: one gateway; answers `<probe> <n>` lines with the CPU µs per request of that round. */
async function child(size: number): Promise<void> {
  const { handler, probes } = await gateway(size);
  (globalThis as { ballast?: unknown }).ballast = ballast(Number(arg("--ballast-mb", "0")));
  for (const p of probes) await round(handler, p, perRound); // warm-up: each route's first request, JIT
  console.log(JSON.stringify({ ready: true, probes: probes.map((p) => p.name), heapMb: await heapMb() }));
  for await (const line of console) {
    const [name, n] = line.trim().split(" ");
    const p = probes.find((x) => x.name === name)!;
    console.log(JSON.stringify({ us: await round(handler, p, Number(n)) }));
  }
}

interface Gateway {
  readonly size: number;
  readonly probes: readonly string[];
  run(probe: string, requests: number): Promise<number>;
  readonly heapMb: number;
}

async function spawnChild(size: number, first: boolean): Promise<Gateway & { kill(): void }> {
  const extra = first && argv.includes("--ballast-mb") ? ["--ballast-mb", arg("--ballast-mb", "0")] : [];
  const proc = Bun.spawn([process.execPath, import.meta.path, "--child", String(size), "--requests", String(perRound), ...extra, dir], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const next = async (): Promise<Record<string, unknown>> => {
    for (;;) {
      const nl = buffered.indexOf("\n");
      if (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        return JSON.parse(line);
      }
      const { value, done } = await reader.read();
      if (done) throw new Error(`child ${size} ended`);
      buffered += value;
    }
  };
  const ready = await next();
  return {
    size,
    probes: ready.probes as string[],
    heapMb: ready.heapMb as number,
    async run(probe, requests) {
      proc.stdin.write(`${probe} ${requests}\n`);
      proc.stdin.flush();
      return (await next()).us as number;
    },
    kill: () => proc.kill(),
  };
}

async function inProcess(size: number): Promise<Gateway> {
  const { handler, probes } = await gateway(size);
  for (const p of probes) await round(handler, p, perRound);
  return {
    size,
    probes: probes.map((p) => p.name),
    heapMb: await heapMb(),
    run: (name, requests) => round(handler, probes.find((p) => p.name === name)!, requests),
  };
}

if (argv.includes("--child")) await child(Number(arg("--child", "1")));
else {
  const same = argv.includes("--same-process");
  const load = loadavg().map((l) => l.toFixed(1));
  const gateways: Gateway[] = [];
  for (const [i, size] of sizes.entries()) gateways.push(same ? await inProcess(size) : await spawnChild(size, i === 0));
  const samples = new Map<string, number[]>();
  const ratios = new Map<string, number[]>();
  const keep = (map: Map<string, number[]>, key: string, x: number) => map.set(key, [...(map.get(key) ?? []), x]);
  /** A run after `settle` requests not counted: a process that sat idle pays its idle-time GC and cold caches first. */
  const measured = async (g: Gateway, p: string) => {
    if (settle) await g.run(p, settle);
    const us = await g.run(p, perRound);
    keep(samples, `${gateways.indexOf(g)}:${p}`, us);
    return us;
  };
  const [base, ...others] = gateways;
  let pair = 0;
  for (let r = 0; r < rounds; r++) {
    // Each probe next to a run of the first config, the order alternating (ABBA): every run follows
    // a run of the other process, and a change of the machine's load moves both sides of a pair.
    for (const g of r % 2 === 0 ? others : [...others].reverse())
      for (const p of r % 2 === 0 ? g.probes : [...g.probes].reverse()) {
        const baseFirst = pair++ % 2 === 0;
        const a = await measured(baseFirst ? base! : g, baseFirst ? "last" : p);
        const b = await measured(baseFirst ? g : base!, baseFirst ? p : "last");
        keep(ratios, `${gateways.indexOf(g)}:${p}`, baseFirst ? b / a : a / b);
      }
  }
  console.log(
    `${same ? "one process" : "one process per config"}, ${rounds} rounds x ${perRound} requests per run (after ${settle} not counted), ` +
      `load ${load.join(" ")} -> ${loadavg()
        .map((l) => l.toFixed(1))
        .join(" ")}`,
  );
  console.log(
    `| routes | heap at ready | route | CPU µs/request (median) | min–max | vs ${base!.size} route${base!.size > 1 ? "s" : ""} (median of pairs) |\n|---:|---:|---|---:|---:|---:|`,
  );
  for (const g of gateways)
    for (const p of g.probes) {
      const xs = samples.get(`${gateways.indexOf(g)}:${p}`)!;
      const ratio = g === base ? "1" : median(ratios.get(`${gateways.indexOf(g)}:${p}`)!).toFixed(3);
      console.log(
        `| ${g.size} | ${g.heapMb} MB | ${p} | ${median(xs).toFixed(2)} | ${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)} | ${ratio}x |`,
      );
    }
  for (const g of gateways) (g as { kill?: () => void }).kill?.();
}
