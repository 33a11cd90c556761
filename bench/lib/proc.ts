/**
 * Processes the benchmark starts: spawned with their output in files (a full pipe would stall a
 * server mid-run), pinned to CPUs when asked, measured through /proc, and always stopped.
 */
import { closeSync, openSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

export interface Started {
  readonly name: string;
  readonly pid: number;
  readonly log: string;
  readonly exited: Promise<number>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stop(graceMs?: number): Promise<number>;
}

const running = new Set<Started>();

export function spawnLogged(
  name: string,
  cmd: readonly string[],
  opts: { dir: string; cpus?: string; env?: Record<string, string>; cwd?: string },
): Started {
  const log = join(opts.dir, `${name}.log`);
  const fd = openSync(log, "a");
  const argv = opts.cpus !== undefined ? ["taskset", "-c", opts.cpus, ...cmd] : [...cmd];
  const proc = Bun.spawn(argv, {
    stdout: fd,
    stderr: fd,
    stdin: "ignore",
    env: { ...process.env, ...opts.env },
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
  });
  closeSync(fd);
  const started: Started = {
    name,
    pid: proc.pid,
    log,
    exited: proc.exited,
    async stop(graceMs = 5000) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
        await proc.exited;
        clearTimeout(timer);
      }
      running.delete(started);
      return proc.exitCode ?? 128;
    },
  };
  running.add(started);
  return started;
}

/** Stops everything still running (on exit, on error, on Ctrl-C). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop(3000)));
}

/** The same free-port picker the test suites use. */
export { freePort } from "../../test/support/gateway-process.ts";

/** Polls `url` until it answers 200; resolves with the milliseconds waited. Bounded by `timeoutMs`. */
export function waitFor200(url: string, proc: Started | undefined, timeoutMs = 20_000, intervalMs = 20): Promise<number> {
  return waitForAnswer(url, proc, timeoutMs, intervalMs, (status) => status === 200);
}

/** Polls `url` until it answers with a status `accept`s (default: any HTTP answer, e.g. a 401 of a server that wants a token). */
export async function waitForAnswer(
  url: string,
  proc: Started | undefined,
  timeoutMs = 20_000,
  intervalMs = 20,
  accept: (status: number) => boolean = () => true,
): Promise<number> {
  const started = performance.now();
  const deadline = started + timeoutMs;
  let exited = false;
  void proc?.exited.then(() => (exited = true));
  while (performance.now() < deadline) {
    if (exited) throw new Error(`${proc!.name} exited before ${url} answered; see ${proc!.log}:\n${tail(proc!.log)}`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (accept(res.status)) return performance.now() - started;
    } catch {
      // not listening yet
    }
    await Bun.sleep(intervalMs);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms${proc ? `; see ${proc.log}:\n${tail(proc.log)}` : ""}`);
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** The process and all its descendants (nginx workers, gateway workers). */
function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length && i < 256; i++) {
    const p = out[i]!;
    try {
      for (const task of readdirSync(`/proc/${p}/task`)) {
        const children = readFileSync(`/proc/${p}/task/${task}/children`, "utf8").trim();
        if (children) out.push(...children.split(/\s+/).map(Number));
      }
    } catch {
      // gone
    }
  }
  return out;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** User + system CPU seconds used so far by the process tree. */
export function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    } catch {
      // gone
    }
  }
  return ticks / CLOCK_TICKS;
}

/** Resident set size of the process tree in bytes. */
export function rssBytes(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      if (m) kb += Number(m[1]);
    } catch {
      // gone
    }
  }
  return kb * 1024;
}

/** Runs a command to completion with bounded time; resolves with its exit code and output. */
export async function run(
  cmd: readonly string[],
  timeoutMs = 600_000,
  env?: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([...cmd], { stdout: "pipe", stderr: "pipe", stdin: "ignore", env: { ...process.env, ...env } });
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, stdout, stderr };
}
