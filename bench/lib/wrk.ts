/** Runs wrk with fixed settings and reads its report (`--latency` gives the percentiles). */
import { run } from "./proc.ts";

export interface WrkSettings {
  readonly threads: number;
  readonly connections: number;
  readonly durationSeconds: number;
  /** CPUs for wrk (taskset), or undefined. */
  readonly cpus?: string;
}

export interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  /** Latency percentiles in milliseconds. */
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  /** Non-2xx/3xx responses plus socket errors. */
  readonly errors: number;
}

function millis(value: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(value.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : n * 60_000;
}

function parseWrk(output: string): WrkResult {
  const pct = (p: string) => millis(new RegExp(`^\\s+${p}%\\s+(\\S+)`, "m").exec(output)?.[1] ?? "");
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m)/.exec(output);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
  const socketErrors = socket ? socket.slice(1, 5).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    requests: Number(total?.[1] ?? NaN),
    seconds: total ? millis(`${total[2]}${total[3]}`) / 1000 : NaN,
    rps,
    p50: pct("50"),
    p90: pct("90"),
    p99: pct("99"),
    errors: non2xx + socketErrors,
  };
}

export interface WrkTarget {
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** A wrk Lua script (e.g. one DPoP proof per request). */
  readonly script?: string;
  /** Arguments for the script's `init(args)`. */
  readonly scriptArgs?: readonly string[];
}

export async function runWrk(
  wrk: string,
  target: WrkTarget,
  s: WrkSettings,
  durationSeconds = s.durationSeconds,
): Promise<WrkResult & { raw: string }> {
  const args = [wrk, `-t${s.threads}`, `-c${s.connections}`, `-d${durationSeconds}s`, "--latency", "--timeout", "5s"];
  for (const [k, v] of Object.entries(target.headers ?? {})) args.push("-H", `${k}: ${v}`);
  if (target.script) args.push("-s", target.script);
  args.push(target.url);
  if (target.script && target.scriptArgs?.length) args.push("--", ...target.scriptArgs);
  const cmd = s.cpus !== undefined ? ["taskset", "-c", s.cpus, ...args] : args;
  const result = await run(cmd, (durationSeconds + 30) * 1000);
  if (result.code !== 0) throw new Error(`wrk failed (${result.code}): ${result.stderr || result.stdout}`);
  return { ...parseWrk(result.stdout), raw: result.stdout };
}
