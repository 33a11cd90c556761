/**
 * Watching the caller of an upstream exchange, lazily. Creating a server request's AbortSignal and
 * listening to it costs more than the rest of a plain request on Bun, and most exchanges are over long before
 * a caller could leave; so an exchange is only watched once it has lasted `WATCH_AFTER_MS`. One
 * shared sweep finds those exchanges, instead of a timer set and cleared per request.
 */
import type { ExchangeControl } from "../upstream/pool.ts";

/** How long an exchange may last before its caller's connection is watched. */
const WATCH_AFTER_MS = 200;
/** How often the sweep runs while exchanges are in flight: a caller is watched 200–300 ms in. */
const SWEEP_MS = 100;

const pending = new Set<CallerWatch>();
let sweepTimer: ReturnType<typeof setTimeout> | undefined;

/**
 * One exchange's caller: `abort` (set by the upstream connection, or by the proxy step) runs when
 * the caller goes away, once the exchange is watched. `end()` when the exchange is over.
 */
export class CallerWatch implements ExchangeControl {
  abort?: () => void = undefined;
  /** The caller went away (and `abort` ran). */
  left = false;
  private readonly since = performance.now();

  constructor(private readonly caller: { readonly signal: AbortSignal }) {
    pending.add(this);
    if (sweepTimer === undefined) scheduleSweep();
  }

  end(): void {
    pending.delete(this);
  }

  private watch(): void {
    const signal = this.caller.signal;
    const onGone = () => {
      this.left = true;
      this.abort?.();
    };
    if (signal.aborted) onGone();
    else signal.addEventListener("abort", onGone, { once: true });
  }

  /** Starts watching the exchanges that have lasted long enough; the others wait for a later sweep. */
  static sweep(now: number): void {
    for (const watch of pending) {
      if (now - watch.since < WATCH_AFTER_MS) continue;
      pending.delete(watch);
      watch.watch();
    }
  }
}

function scheduleSweep(): void {
  sweepTimer = setTimeout(sweep, SWEEP_MS);
  // The exchanges' own sockets keep the process alive, not this.
  (sweepTimer as { unref?: () => void }).unref?.();
}

function sweep(): void {
  sweepTimer = undefined;
  CallerWatch.sweep(performance.now());
  if (pending.size) scheduleSweep();
}
