/**
 * The in-process harness of bench/micro.ts and bench/auth-micro.ts: a source tree's proxy app
 * built from a config, an upstream that answers at once, rounds timed in process CPU, and the
 * medians of rounds interleaved across trees, so a change can be judged on a noisy machine.
 * The scripts keep only their scenarios.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pluginRegistry as thisCheckoutsPlugins } from "../../src/plugins/registry.ts";

export type Handler = (req: Request) => Response | Promise<Response>;

/** What the bench's nginx upstream answers, headers included. */
export const upstreamHeaders = {
  server: "nginx/1.22.1",
  date: new Date().toUTCString(),
  "content-type": "text/plain",
  "content-length": "2",
  connection: "keep-alive",
};
export const upstreamFetch = async () => new Response("ok", { headers: upstreamHeaders });

/** The request headers wrk sends. */
export const wrkHeaders = { host: "127.0.0.1:8000", "user-agent": "wrk", accept: "*/*" };

/** The caller's connection, as the listener hands it to the app. */
const conn = { remoteAddress: "127.0.0.1", localPort: 8000, tls: false };

export interface MicroArgs {
  /** Source trees to compare, as absolute paths (default: this checkout). */
  readonly dirs: string[];
  /** The `--name` options given. */
  readonly flags: ReadonlySet<string>;
  /** The values of the options named in `valued` (`--only 4,5`). */
  readonly values: ReadonlyMap<string, string>;
  /** Timed rounds per tree and scenario: 9, or 3 with --quick. */
  readonly rounds: number;
  /** Requests per round: `full`, or a tenth of it with --quick (a spot check of the table). */
  requests(full: number): number;
}

/** The command line: options, `--name value` for the names in `valued`, the rest source trees. */
export function microArgs(valued: readonly string[] = []): MicroArgs {
  const args = Bun.argv.slice(2);
  const flags = new Set<string>();
  const values = new Map<string, string>();
  const dirs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (valued.includes(a)) values.set(a, args[++i] ?? "");
    else if (a.startsWith("--")) flags.add(a);
    else if (!/^\d+$/.test(a)) dirs.push(resolve(a)); // imports resolve from here, not from the shell's folder
  }
  if (!dirs.length) dirs.push(resolve(import.meta.dir, "../.."));
  const quick = flags.has("--quick");
  return { dirs, flags, values, rounds: quick ? 3 : 9, requests: (full) => (quick ? Math.ceil(full / 10) : full) };
}

/** `dir`'s module at `path`, or undefined where that tree does not have the file (an older checkout). */
async function optional(dir: string, path: string): Promise<Record<string, any> | undefined> {
  return existsSync(`${dir}/${path}`) ? import(`${dir}/${path}`) : undefined;
}

/**
 * The proxy app of the source tree `dir` for the config `toml`, with what start.ts gives it (log,
 * metrics, the plugins' context) and `upstreamFetch`; `more` adds to or replaces those.
 */
export async function loadApp(dir: string, toml: string, more: Record<string, unknown> = {}): Promise<Handler> {
  const { parseConfig } = await import(`${dir}/src/config/load.ts`);
  const { createProxyApp } = await import(`${dir}/src/gateway/app.ts`);
  const { createLogger } = await import(`${dir}/src/log.ts`);
  // Trees from before the plugin registry take this checkout's, trees from before metrics go without.
  const plugins = (await optional(dir, "src/plugins/registry.ts"))?.pluginRegistry ?? thisCheckoutsPlugins;
  const Metrics = (await optional(dir, "src/metrics.ts"))?.Metrics;
  const runtime = (await optional(dir, "src/runtime/bun.ts"))?.bunRuntime;
  const shared = (await optional(dir, "src/lib/shared.ts"))?.createShared();
  const log = createLogger("error");
  const metrics = Metrics ? new Metrics("micro", "bun") : undefined;
  const config = parseConfig(toml, "/tmp/micro.toml", plugins);
  const pluginContext = { runtime, log, server: config.server, trustedCertificates: undefined, shared, metrics };
  const app = await createProxyApp(config, { log, metrics, pluginContext, upstreamFetch: () => upstreamFetch, ...more });
  return (req) => app.fetch(req, conn);
}

/** Process CPU (user + system) in µs per request for `n` requests, sent 50 at a time by `send`. */
export async function cpuPerRequest(n: number, send: (i: number) => Promise<unknown>): Promise<number> {
  const before = process.cpuUsage();
  for (let i = 0; i < n; i += 50) {
    const pending: Promise<unknown>[] = [];
    for (let j = 0; j < 50 && i + j < n; j++) pending.push(send(i + j));
    await Promise.all(pending);
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}

/**
 * One warm-up round per entry, then `rounds` rounds of every entry in turn (so a busy spell of
 * the machine falls on all alike): each entry's median µs per request, in the entries' order.
 */
export async function interleavedMedians<T>(
  entries: readonly T[],
  rounds: number,
  warmUp: (entry: T) => Promise<unknown>,
  round: (entry: T) => Promise<number>,
): Promise<number[]> {
  for (const e of entries) await warmUp(e);
  const samples = entries.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) for (const [i, e] of entries.entries()) samples[i]!.push(await round(e));
  return samples.map((xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!);
}

/** A line of the printed table: `label`, the µs per request, then `note`. */
export const tableRow = (label: string, us: number, note = ""): string => `${label} ${us.toFixed(2).padStart(7)} µs/req CPU${note}`;
