/**
 * Routing at scale (issue 19): the gateway with 1, 1 100 and 11 000 generated routes (10 % of
 * them regex paths, some with hosts and methods) against one nginx upstream, in one run.
 * Per route set: time (and the process's CPU) to ready after start, the median of `--starts`
 * starts; RSS at ready and after the reloads; req/s on its first, middle and last route (wrk,
 * every route warmed up first, then each run paired with a run of the 1-route config next to it,
 * each measured run after a settle run of the same route that is not counted,
 * medians of the rounds and of the pairs' ratios) with the gateway's CPU µs per request; the time
 * and CPU of a `POST /config/reload` of the same file (median of 3). The machine's load average is
 * printed with the table: on a shared machine the CPU columns say more than the wall-clock ones.
 *
 *   bun bench/routes.ts [--quick] [--duration 3] [--rounds 5] [--warmup 1] [--settle 1] [--starts 3] [--sizes 1,1100,11000] [--gateway dist/oidc-gateway]
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
  /** Seconds of wrk on every route before the measured runs (default 1). */
  readonly warmupSeconds?: number;
  /** Seconds of wrk, not counted, right before each measured run (default 1; 0: none). */
  readonly settleSeconds?: number;
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
  /** The gateway's CPU (user + system, /proc) per request of each run, µs. */
  readonly cpuUs: Map<string, number[]>;
  /** Req/s of each run over the 1-route config's in the run next to it. */
  readonly ratios: Map<string, number[]>;
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const round1 = (n: number) => Math.round(n * 10) / 10;
const MB = 1024 * 1024;

export async function routesScenario(o: RoutesOptions) {
  const sizes = o.sizes ?? [1, 1_100, 11_000];
  const loadBefore = loadavg().map((l) => round1(l));
  const running: Running[] = [];
  /** One wrk run on one route; its req/s and the gateway's CPU µs per request are kept unless warming up. */
  const measure = async (g: Running, p: Running["probes"][number], warmupSeconds?: number): Promise<{ rps: number }> => {
    // A gateway that sat idle while the other was measured first pays its idle-time collections
    // and cold caches, more with a larger heap: a settle run, not counted, before each measured one.
    if (warmupSeconds === undefined && (o.settleSeconds ?? 1) > 0) await measure(g, p, o.settleSeconds ?? 1);
    const cpu = cpuSeconds(g.proc.pid);
    const result = await runWrk(
      o.wrk,
      { url: `${g.proxy}${p.path}`, headers: { Host: p.host } },
      { threads: 1, connections: o.connections, durationSeconds: warmupSeconds ?? o.durationSeconds },
    );
    const cpuUs = ((cpuSeconds(g.proc.pid) - cpu) * 1e6) / result.requests;
    if (result.errors) throw new Error(`routes-${g.size}: ${result.errors} errors on the ${p.which} route:\n${result.raw}`);
    if (warmupSeconds === undefined) {
      g.rps.set(p.which, [...(g.rps.get(p.which) ?? []), result.rps]);
      g.cpuUs.set(p.which, [...(g.cpuUs.get(p.which) ?? []), cpuUs]);
    }
    return result;
  };
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
        cpuUs: new Map(),
        ratios: new Map(),
      });
    }
    // Every route is warmed up first (JIT, its metrics series, the pool's connections), so no
    // measured run pays a first-request cost that its pair does not.
    for (const g of running) for (const p of g.probes) await measure(g, p, o.warmupSeconds ?? 1);
    // Paired runs: each probe of a larger config is measured right next to the 1-route config,
    // the order alternating (ABBA), and compared within its pair: a machine that gets busier or
    // quieter between runs moves both sides of a pair, not one config against the other.
    const base = running[0]!;
    const baseProbe = base.probes[0]!;
    for (let r = 0; r < o.rounds; r++) {
      let pair = 0;
      const order = r % 2 === 0 ? running.slice(1) : running.slice(1).reverse();
      for (const g of order) {
        const probes = r % 2 === 0 ? g.probes : [...g.probes].reverse();
        for (const p of probes) {
          const baseFirst = (r + pair++) % 2 === 0;
          const a = baseFirst ? await measure(base, baseProbe) : await measure(g, p);
          const b = baseFirst ? await measure(g, p) : await measure(base, baseProbe);
          const [own, of1] = baseFirst ? [b, a] : [a, b];
          g.ratios.set(p.which, [...(g.ratios.get(p.which) ?? []), own.rps / of1.rps]);
        }
      }
    }
    if (running.length === 1) for (let r = 0; r < o.rounds; r++) await measure(base, baseProbe);
    const results = [];
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
      const cpuUs = Object.fromEntries([...g.cpuUs].map(([which, xs]) => [which, round1(median(xs))]));
      // The median of the paired ratios; the 1-route config is 1 by definition.
      const ratio = Object.fromEntries(
        g === running[0] ? [["last", 1]] : [...g.ratios].map(([which, xs]) => [which, Math.round(median(xs) * 1000) / 1000]),
      );
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
        cpu_us_per_request: cpuUs,
        ratio_to_1_route: ratio,
        last_route_ratio_to_1_route: ratio.last!,
        rss_after_reloads_mb: round1(rssBytes(g.proc.pid) / MB),
      });
    }
    return {
      status: "ok" as const,
      duration_seconds: o.durationSeconds,
      rounds: o.rounds,
      warmup_seconds: o.warmupSeconds ?? 1,
      settle_seconds: o.settleSeconds ?? 1,
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
    `req/s: wrk -t1 -c${r.connections}, ${r.rounds} rounds of ${r.duration_seconds} s (each after ${r.settle_seconds} s not counted) after ${r.warmup_seconds} s of warm-up per route, medians; ` +
      "each run paired with a run of the 1-route config next to it, ratio = median of the pairs' ratios",
  );
  console.log(
    "| routes in gateway.toml | ready after start | CPU to ready | reload | CPU per reload | RSS | RSS over 1 route | req/s first / middle / last | CPU µs per request | vs 1 route (paired) |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const x of r.results) {
    const n = (v: number | undefined) => (v === undefined ? "-" : v.toLocaleString("en").replace(/,/g, " "));
    const three = (o: Record<string, number>, f: (v: number | undefined) => string) =>
      x.regex_routes ? ["first", "middle", "last"].map((k) => f(o[k])).join(" / ") : f(o.last);
    const what = x.regex_routes ? `${n(x.routes - x.regex_routes)} prefix + ${n(x.regex_routes)} regex` : `${x.routes} prefix`;
    console.log(
      `| ${what} | ${x.ready_ms} ms | ${x.ready_cpu_ms} ms | ${x.reload_ms} ms | ${x.reload_cpu_ms} ms | ${x.rss_mb} MB | ${x.rss_over_1_route_mb} MB | ${three(x.rps, n)} | ${three(x.cpu_us_per_request, (v) => String(v ?? "-"))} | ${three(x.ratio_to_1_route, (v) => `${v ?? "-"}x`)} |`,
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
      durationSeconds: Number(arg("--duration", quick ? "2" : "3")),
      rounds: Number(arg("--rounds", quick ? "1" : "5")),
      warmupSeconds: Number(arg("--warmup", "1")),
      settleSeconds: Number(arg("--settle", "1")),
      sizes: arg("--sizes", "1,1100,11000").split(",").map(Number),
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
