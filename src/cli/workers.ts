/**
 * `[server] workers = N`: a supervisor process starts N copies of this program, each a full
 * gateway listening on the same proxy ports with SO_REUSEPORT (the kernel spreads connections),
 * sharing nothing else: caches are per worker. Worker 0 also serves the admin API.
 *
 * The supervisor forwards SIGTERM/SIGINT (graceful stop) and SIGHUP (reload) to every worker,
 * restarts a worker that crashes (with backoff, logged), and exits when all workers are gone.
 * A worker whose supervisor disappears stops itself.
 */
import type { LoadedConfig } from "../config/load.ts";
import type { Logger } from "../log.ts";
import type { ChildProcess, Runtime } from "../runtime/types.ts";

/** Set in a worker's environment to its index (0 … N-1); absent in the supervisor. */
const WORKER_ENV = "OIDC_GATEWAY_WORKER";

/** A worker that exits with an error this soon after its first start (bad config, port taken) is not restarted. */
const STARTUP_GRACE_MS = 10_000;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 10_000;
/** A worker that ran this long without crashing starts over at the shortest backoff. */
const BACKOFF_RESET_MS = 30_000;
/** After `shutdown_timeout`, how long workers get to exit before SIGKILL. */
const KILL_AFTER_MS = 5_000;
const PARENT_CHECK_MS = 1_000;

export interface WorkerRole {
  readonly index: number;
}

/** This process's role: a worker (started by a supervisor) or undefined. */
export function workerRole(runtime: Runtime): WorkerRole | undefined {
  const value = runtime.env(WORKER_ENV);
  if (value === undefined || !/^\d{1,3}$/.test(value)) return undefined;
  return { index: Number(value) };
}

/** In a worker: calls `onOrphaned` once when the supervisor is gone (the worker is re-parented). */
export function watchSupervisor(runtime: Runtime, onOrphaned: () => void): void {
  const parent = runtime.parentPid();
  const timer = setInterval(() => {
    if (runtime.parentPid() === parent) return;
    clearInterval(timer);
    onOrphaned();
  }, PARENT_CHECK_MS);
  (timer as { unref?: () => void }).unref?.();
}

interface Slot {
  readonly index: number;
  child: ChildProcess | undefined;
  startedAt: number;
  launches: number;
  backoffMs: number;
  restartTimer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * Runs the supervisor until every worker has exited after a stop signal (or a worker could not
 * start). Resolves with the process exit code: 0 after a graceful stop.
 */
export function superviseWorkers(runtime: Runtime, loaded: LoadedConfig, log: Logger): Promise<number> {
  const { server } = loaded.config;
  const count = server.workers;
  for (const key of ["proxy_listen", "proxy_tls_listen"] as const) {
    if (server[key]?.port === 0) {
      console.error(
        `${loaded.file}: invalid configuration\n  server.${key}: expected a fixed port when 'workers' is more than 1 (with port 0 every worker would listen on a port of its own)`,
      );
      return Promise.resolve(1);
    }
  }
  // Each worker re-reads the same file; arguments are passed through as given.
  const args = runtime.args();
  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({
    index,
    child: undefined,
    startedAt: 0,
    launches: 0,
    backoffMs: BACKOFF_MIN_MS,
    restartTimer: undefined,
  }));
  let stopping = false;
  let exitCode = 0;
  const done = Promise.withResolvers<number>();

  const live = () => slots.filter((s) => s.child !== undefined);
  const finishIfIdle = () => {
    if (stopping && live().length === 0) {
      log.info("workers.stopped", { exit_code: exitCode });
      done.resolve(exitCode);
    }
  };

  const stopAll = (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    log.info("workers.stopping", { reason, workers: live().length });
    for (const slot of slots) {
      if (slot.restartTimer) clearTimeout(slot.restartTimer);
      slot.child?.kill("SIGTERM");
    }
    const killer = setTimeout(() => {
      for (const slot of live()) {
        log.warn("worker.killed", { worker: slot.index, pid: slot.child!.pid, after_ms: server.shutdown_timeout + KILL_AFTER_MS });
        slot.child!.kill("SIGKILL");
      }
    }, server.shutdown_timeout + KILL_AFTER_MS);
    (killer as { unref?: () => void }).unref?.();
    finishIfIdle();
  };

  const launch = (slot: Slot) => {
    slot.restartTimer = undefined;
    if (stopping) return;
    const child = runtime.spawnSelf(args, { [WORKER_ENV]: String(slot.index) });
    slot.child = child;
    slot.startedAt = Date.now();
    slot.launches++;
    log.info("worker.started", { worker: slot.index, pid: child.pid, launch: slot.launches });
    void child.exited.then(({ code, signal }) => {
      slot.child = undefined;
      const ranMs = Date.now() - slot.startedAt;
      if (stopping) {
        if (code !== 0 && code !== null) exitCode = exitCode || 1;
        log.info("worker.exited", { worker: slot.index, pid: child.pid, code, signal });
        finishIfIdle();
        return;
      }
      if (slot.launches === 1 && ranMs < STARTUP_GRACE_MS && code !== null && code !== 0) {
        // Its own output says why (config, port in use, …); restarting would fail the same way.
        log.error("worker.start_failed", { worker: slot.index, pid: child.pid, code });
        stopAll("a worker could not start", Math.min(code, 3));
        return;
      }
      if (ranMs >= BACKOFF_RESET_MS) slot.backoffMs = BACKOFF_MIN_MS;
      const delay = slot.backoffMs;
      slot.backoffMs = Math.min(slot.backoffMs * 2, BACKOFF_MAX_MS);
      log.error("worker.crashed", { worker: slot.index, pid: child.pid, code, signal, ran_ms: ranMs, restart_in_ms: delay });
      slot.restartTimer = setTimeout(() => launch(slot), delay);
    });
  };

  runtime.onSignal("SIGTERM", () => stopAll("SIGTERM", 0));
  runtime.onSignal("SIGINT", () => stopAll("SIGINT", 0));
  runtime.onSignal("SIGHUP", () => {
    for (const slot of live()) slot.child!.kill("SIGHUP");
  });
  log.info("workers.starting", { workers: count, pid: runtime.pid() });
  for (const slot of slots) launch(slot);
  return done.promise;
}
