/**
 * Routing at scale (issue 19): the gateway with 1, 1 100 and 11 000 generated routes (10 % of
 * them regex paths, some with hosts and methods) against one nginx upstream, in one run.
 * Per route set: time (and the process's CPU) to ready after start, the median of `--starts`
 * starts; RSS at ready and after the reloads; req/s on its first, middle and last route (wrk,
 * interleaved rounds, medians); the time and CPU of a `POST /config/reload` of the same file
 * (median of 3). The machine's load average is printed with the table: on a shared machine the
 * CPU columns say more than the wall-clock ones.
 *
 *   bun bench/routes.ts [--quick] [--duration 4] [--rounds 3] [--starts 3] [--gateway dist/oidc-gateway]
 *
 * bench/bench.ts runs it too (`--skip routes` to leave it out).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { generateRoutes, probe, routesToml } from "./lib/generated-routes.ts";
import { upstreamConfig, startNginx } from "./lib/nginx.ts";
import { cpuSeconds, freePort, rssBytes, spawnLogged, stopAll, waitFor200, type Started } from "./lib/proc.ts";
import { ensureTools } from "./lib/tools.ts";
import { runWrk } from "./lib/wrk.ts";

export interface RoutesOptions {
  readonly binary: string;
  readonly dir: string;
  readonly wrk: string;
  readonly upstreamPort: number;
  readonly durationSeconds: number;
  readonly rounds: number;
  readonly connections: number;
  readonly sizes?: readonly number[];
  /** Starts per route set; the last one stays up for the rest (default 3). */
  readonly starts?: number;
}

interface Running {
  readonly size: number;
  readonly proc: Started;
  readonly proxy: string;
  readonly admin: string;
  readonly readyMs: number;
  readonly readyCpuMs: number;
  readonly rssAtReady: number;
  readonly probes: { readonly which: string; readonly path: string; readonly host: string }[];
  readonly rps: Map<string, number[]>;
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const round1 = (n: number) => Math.round(n * 10) / 10;
const MB = 1024 * 1024;

export async function routesScenario(o: RoutesOptions) {
  const sizes = o.sizes ?? [1, 1_100, 11_000];
  const loadBefore = loadavg().map((l) => round1(l));
  const running: Running[] = [];
  try {
    // One gateway at a time while it starts, so start times are not measured against each other.
    for (const size of sizes) {
      const routes = generateRoutes(size, size > 1 ? 1 / 11 : 0);
      const file = join(o.dir, `routes-${size}.toml`);
      const starts = o.starts ?? 3;
      const readyMs: number[] = [];
      const readyCpuMs: number[] = [];
      let proc: Started | undefined;
      let proxyPort = 0;
      let adminPort = 0;
      for (let n = 0; n < starts; n++) {
        if (proc) await proc.stop();
        proxyPort = await freePort();
        adminPort = await freePort();
        const server = `[server]\naccess_log = false\nlog_level = "warn"\nproxy_listen = "127.0.0.1:${proxyPort}"\nadmin_listen = "127.0.0.1:${adminPort}"\n`;
        writeFileSync(file, routesToml(routes, `http://127.0.0.1:${o.upstreamPort}`, server));
        const started = performance.now();
        proc = spawnLogged(`routes-${size}`, [o.binary, "--config", file], { dir: o.dir });
        await waitFor200(`http://127.0.0.1:${adminPort}/status`, proc, 60_000, 5);
        readyMs.push(performance.now() - started);
        readyCpuMs.push(cpuSeconds(proc.pid) * 1000);
      }
      // Settled: what the process keeps, not the garbage of its start.
      await Bun.sleep(500);
      const rssAtReady = rssBytes(proc!.pid);
      const picks =
        size === 1
          ? [["last", 0]]
          : [
              ["first", 0],
              ["middle", Math.floor(size / 2)],
              ["last", size - 1],
            ];
      const probes = picks.map(([which, i]) => {
        const p = probe(routes, i as number);
        return { which: which as string, path: p.path, host: p.host };
      });
      for (const p of probes) {
        const res = await fetch(`http://127.0.0.1:${proxyPort}${p.path}`, { headers: { host: p.host } });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`routes-${size}: ${p.which} route answered ${res.status}`);
      }
      running.push({
        size,
        proc: proc!,
        proxy: `http://127.0.0.1:${proxyPort}`,
        admin: `http://127.0.0.1:${adminPort}`,
        readyMs: median(readyMs),
        readyCpuMs: median(readyCpuMs),
        rssAtReady,
        probes,
        rps: new Map(),
      });
    }
    for (let r = 0; r < o.rounds; r++) {
      const order = r % 2 === 0 ? running : [...running].reverse();
      for (const g of order) {
        for (const p of g.probes) {
          const result = await runWrk(
            o.wrk,
            { url: `${g.proxy}${p.path}`, headers: { Host: p.host } },
            { threads: 1, connections: o.connections, durationSeconds: o.durationSeconds },
          );
          if (result.errors) throw new Error(`routes-${g.size}: ${result.errors} errors on the ${p.which} route:\n${result.raw}`);
          g.rps.set(p.which, [...(g.rps.get(p.which) ?? []), result.rps]);
        }
      }
    }
    const results = [];
    const baseRps = median(running[0]!.rps.get("last")!);
    const baseRss = running[0]!.rssAtReady;
    for (const g of running) {
      const reloads: number[] = [];
      const reloadCpu: number[] = [];
      for (let i = 0; i < 3; i++) {
        const cpu = cpuSeconds(g.proc.pid);
        const t = performance.now();
        const res = await fetch(`${g.admin}/config/reload`, { method: "POST", headers: { "content-type": "application/json" } });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`routes-${g.size}: reload answered ${res.status}`);
        reloads.push(performance.now() - t);
        reloadCpu.push((cpuSeconds(g.proc.pid) - cpu) * 1000);
      }
      const rps = Object.fromEntries([...g.rps].map(([which, xs]) => [which, Math.round(median(xs))]));
      results.push({
        routes: g.size,
        regex_routes: g.size > 1 ? Math.round(g.size / 11) : 0,
        ready_ms: round1(g.readyMs),
        ready_cpu_ms: Math.round(g.readyCpuMs),
        reload_ms: round1(median(reloads)),
        reload_cpu_ms: Math.round(median(reloadCpu)),
        rss_mb: round1(g.rssAtReady / MB),
        rss_over_1_route_mb: round1((g.rssAtReady - baseRss) / MB),
        rps,
        last_route_ratio_to_1_route: Math.round((rps.last! / baseRps) * 1000) / 1000,
        rss_after_reloads_mb: round1(rssBytes(g.proc.pid) / MB),
      });
    }
    return {
      status: "ok" as const,
      duration_seconds: o.durationSeconds,
      rounds: o.rounds,
      connections: o.connections,
      starts: o.starts ?? 3,
      load_average: { before: loadBefore, after: loadavg().map((l) => round1(l)) },
      results,
    };
  } finally {
    await Promise.all(running.map((g) => g.proc.stop()));
  }
}

export function printRoutes(r: Awaited<ReturnType<typeof routesScenario>>): void {
  console.log(`load average (1, 5, 15 min) before ${r.load_average.before.join(" ")}, after ${r.load_average.after.join(" ")}`);
  console.log(
    "| routes in gateway.toml | ready after start | CPU to ready | reload | CPU per reload | RSS | RSS over 1 route | req/s first | middle | last | last / 1 route |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const x of r.results) {
    const rps = x.rps as Record<string, number>;
    const n = (v: number | undefined) => (v === undefined ? "-" : v.toLocaleString("en").replace(/,/g, " "));
    const what = x.regex_routes ? `${n(x.routes - x.regex_routes)} prefix + ${n(x.regex_routes)} regex` : `${x.routes} prefix`;
    console.log(
      `| ${what} | ${x.ready_ms} ms | ${x.ready_cpu_ms} ms | ${x.reload_ms} ms | ${x.reload_cpu_ms} ms | ${x.rss_mb} MB | ${x.rss_over_1_route_mb} MB | ${n(rps.first)} | ${n(rps.middle)} | ${n(rps.last)} | ${x.last_route_ratio_to_1_route}x |`,
    );
  }
}

if (import.meta.main) {
  const argv = Bun.argv.slice(2);
  const arg = (name: string, fallback: string) => {
    const i = argv.indexOf(name);
    return i >= 0 && argv[i + 1] ? argv[i + 1]! : fallback;
  };
  const quick = argv.includes("--quick");
  const root = resolve(import.meta.dir, "..");
  const dir = mkdtempSync(join(tmpdir(), "oidc-gateway-routes-"));
  const tools = await ensureTools();
  const upstreamPort = await freePort();
  const upstream = startNginx(tools.nginx, dir, "upstream", upstreamConfig(dir, "upstream", upstreamPort));
  try {
    await waitFor200(`http://127.0.0.1:${upstreamPort}/`, upstream);
    const result = await routesScenario({
      binary: resolve(arg("--gateway", join(root, "dist/oidc-gateway"))),
      dir,
      wrk: tools.wrk,
      upstreamPort,
      durationSeconds: Number(arg("--duration", quick ? "2" : "4")),
      rounds: Number(arg("--rounds", quick ? "1" : "3")),
      starts: Number(arg("--starts", quick ? "1" : "3")),
      connections: 50,
    });
    printRoutes(result);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await stopAll();
    if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
  }
}
