/**
 * Kong's health checks for one upstream: active probes on a timer and passive counting of
 * proxied outcomes. Consecutive failures of one kind up to its threshold mark a target
 * unhealthy; consecutive successes up to `healthy.successes` mark it healthy again. A threshold
 * of 0 turns that count off; with every threshold off, health checks are off (HEALTHCHECKS_OFF).
 */
import type { HealthchecksConfig } from "../../config/upstreams.ts";
import type { Target } from "./target.ts";

/** What one probe or one proxied attempt came to. */
export type Outcome =
  | { readonly kind: "http"; readonly status: number }
  | { readonly kind: "connected" }
  | { readonly kind: "tcp_failure" }
  | { readonly kind: "timeout" };

export type Prober = (target: Target) => Promise<Outcome>;

export type HealthState = "HEALTHY" | "UNHEALTHY" | "HEALTHCHECKS_OFF";

interface Counters {
  successes: number;
  http: number;
  tcp: number;
  timeouts: number;
}

type Thresholds = {
  successes: number;
  http_failures: number;
  tcp_failures: number;
  timeouts: number;
  okStatuses: ReadonlySet<number>;
  badStatuses: ReadonlySet<number>;
};

export class HealthChecker {
  readonly #targets: readonly Target[];
  readonly #counters = new Map<Target, Counters>();
  readonly #active: Thresholds;
  readonly #passive: Thresholds & { tcpOnly: boolean };
  readonly #intervals: { healthy: number; unhealthy: number };
  readonly #concurrency: number;
  readonly #prober: Prober | undefined;
  readonly #onChange: ((target: Target, healthy: boolean) => void) | undefined;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #stopped = false;
  /** Active probes or passive counting can mark a target: otherwise HEALTHCHECKS_OFF. */
  readonly enabled: boolean;
  readonly activeEnabled: boolean;
  readonly passiveEnabled: boolean;

  constructor(targets: readonly Target[], config: HealthchecksConfig, prober?: Prober, onChange?: (target: Target, healthy: boolean) => void) {
    this.#targets = targets;
    const a = config.active;
    const p = config.passive;
    this.#active = {
      successes: a.healthy.successes,
      http_failures: a.unhealthy.http_failures,
      tcp_failures: a.unhealthy.tcp_failures,
      timeouts: a.unhealthy.timeouts,
      okStatuses: new Set(a.healthy.http_statuses),
      badStatuses: new Set(a.unhealthy.http_statuses),
    };
    this.#passive = {
      successes: p.healthy.successes,
      http_failures: p.unhealthy.http_failures,
      tcp_failures: p.unhealthy.tcp_failures,
      timeouts: p.unhealthy.timeouts,
      okStatuses: new Set(p.healthy.http_statuses),
      badStatuses: new Set(p.unhealthy.http_statuses),
      tcpOnly: p.type === "tcp",
    };
    this.#intervals = { healthy: a.healthy.interval * 1000, unhealthy: a.unhealthy.interval * 1000 };
    this.#concurrency = a.concurrency;
    this.#prober = prober;
    this.#onChange = onChange;
    this.activeEnabled = this.#intervals.healthy > 0 || this.#intervals.unhealthy > 0;
    const marks = (t: Thresholds) => t.http_failures + t.tcp_failures + t.timeouts > 0;
    this.passiveEnabled = marks(this.#passive);
    this.enabled = this.activeEnabled || this.passiveEnabled;
    for (const t of targets) this.#counters.set(t, { successes: 0, http: 0, tcp: 0, timeouts: 0 });
  }

  /** Without health checks a target shows HEALTHCHECKS_OFF, unless the admin API marked it unhealthy (it gets no traffic). */
  state(target: Target): HealthState {
    if (!this.enabled) return target.healthy ? "HEALTHCHECKS_OFF" : "UNHEALTHY";
    return target.healthy ? "HEALTHY" : "UNHEALTHY";
  }

  /**
   * Kong's `PUT /upstreams/{u}/targets/{t}/healthy|unhealthy`: sets the target's state and resets
   * its counters; active checks may change it again later, as in Kong.
   */
  mark(target: Target, healthy: boolean): void {
    if (!this.#counters.has(target)) return;
    if (target.healthy === healthy) {
      const c = this.#counters.get(target)!;
      c.successes = c.http = c.tcp = c.timeouts = 0;
      return;
    }
    this.#set(target, healthy);
  }

  /** Counts a proxied attempt's outcome (passive health checks). */
  passive(target: Target, outcome: Outcome): void {
    if (!this.enabled) return;
    if (this.#passive.tcpOnly && outcome.kind === "http") this.#count(target, { kind: "connected" }, this.#passive);
    else this.#count(target, outcome, this.#passive);
  }

  /** Starts the probe timers (no-op without active checks or a prober). */
  start(): void {
    if (!this.activeEnabled || !this.#prober) return;
    if (this.#intervals.healthy > 0) this.#loop(this.#intervals.healthy, true);
    if (this.#intervals.unhealthy > 0) this.#loop(this.#intervals.unhealthy, false);
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
  }

  /** Takes over the verdicts of an earlier checker (a config reload keeps what was learnt). */
  adopt(previous: HealthChecker): void {
    for (const t of this.#targets) {
      const before = previous.#targets.find((p) => p.name === t.name);
      if (before) t.healthy = before.healthy;
    }
  }

  #loop(interval: number, healthy: boolean): void {
    const run = async () => {
      if (this.#stopped) return;
      await this.#probeAll(this.#targets.filter((t) => t.weight > 0 && t.healthy === healthy));
      if (!this.#stopped) this.#schedule(run, interval);
    };
    this.#schedule(run, interval);
  }

  #schedule(run: () => Promise<void>, ms: number): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      void run();
    }, ms);
    (timer as { unref?: () => void }).unref?.();
    this.#timers.add(timer);
  }

  async #probeAll(targets: readonly Target[]): Promise<void> {
    const queue = [...targets];
    const worker = async () => {
      for (let t = queue.shift(); t; t = queue.shift()) {
        let outcome: Outcome;
        try {
          outcome = await this.#prober!(t);
        } catch {
          outcome = { kind: "tcp_failure" };
        }
        if (!this.#stopped) this.#count(t, outcome, this.#active);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.#concurrency, queue.length) }, worker));
  }

  #count(target: Target, outcome: Outcome, th: Thresholds): void {
    const c = this.#counters.get(target);
    if (!c) return;
    let failure: "http" | "tcp" | "timeouts" | undefined;
    let success = false;
    if (outcome.kind === "connected") success = true;
    else if (outcome.kind === "tcp_failure") failure = "tcp";
    else if (outcome.kind === "timeout") failure = "timeouts";
    else if (th.okStatuses.has(outcome.status)) success = true;
    else if (th.badStatuses.has(outcome.status)) failure = "http";
    else return;
    if (success) {
      c.http = c.tcp = c.timeouts = 0;
      c.successes++;
      if (!target.healthy && th.successes > 0 && c.successes >= th.successes) this.#set(target, true);
      return;
    }
    c.successes = 0;
    c[failure!]++;
    const limit = failure === "http" ? th.http_failures : failure === "tcp" ? th.tcp_failures : th.timeouts;
    if (target.healthy && limit > 0 && c[failure!] >= limit) this.#set(target, false);
  }

  #set(target: Target, healthy: boolean): void {
    target.healthy = healthy;
    const c = this.#counters.get(target)!;
    c.successes = c.http = c.tcp = c.timeouts = 0;
    this.#onChange?.(target, healthy);
  }
}
