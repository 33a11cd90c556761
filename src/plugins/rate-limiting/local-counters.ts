/**
 * The `local` policy: fixed-window counters in this process, exact (JavaScript runs one request's
 * check-and-increment without interleaving). One counter per caller and window, reset when its
 * window turns. Bounded: counters of ended windows are swept, and past `maxEntries` the oldest
 * counters go first.
 */
export interface WindowCount {
  readonly key: string;
  readonly limit: number;
  /** Epoch ms the counter's window ends. */
  readonly end: number;
}

export interface CountResult {
  readonly counts: number[];
  readonly blocked: boolean;
}

interface Counter {
  count: number;
  end: number;
}

export class LocalCounters {
  private readonly counters = new Map<string, Counter>();
  private nextSweep = 0;

  constructor(private readonly maxEntries = 1_000_000) {}

  get size(): number {
    return this.counters.size;
  }

  /** Unless a window already reached its limit, counts the request in each window. */
  count(windows: readonly WindowCount[], now: number): CountResult {
    if (now >= this.nextSweep) this.sweep(now);
    const counters: Counter[] = [];
    let blocked = false;
    for (const w of windows) {
      let counter = this.counters.get(w.key);
      if (!counter || counter.end <= now) {
        if (counter) this.counters.delete(w.key);
        counter = { count: 0, end: w.end };
        if (this.counters.size >= this.maxEntries) this.counters.delete(this.counters.keys().next().value!);
        this.counters.set(w.key, counter);
      }
      counters.push(counter);
      if (counter.count >= w.limit) blocked = true;
    }
    if (!blocked) for (const counter of counters) counter.count++;
    return { counts: counters.map((c) => c.count), blocked };
  }

  /**
   * Drops counters of ended windows (callers gone quiet), at most every 10 s and only once there
   * are many: a counter of a live caller is reset in place when its window turns.
   */
  private sweep(now: number): void {
    this.nextSweep = now + 10_000;
    if (this.counters.size < 10_000) return;
    for (const [key, counter] of this.counters) if (counter.end <= now) this.counters.delete(key);
  }

  clear(): void {
    this.counters.clear();
  }
}
