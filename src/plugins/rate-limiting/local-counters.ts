/**
 * The `local` policy: fixed-window counters in this process, exact (JavaScript runs one request's
 * check-and-increment without interleaving). One entry per caller, holding a counter per window,
 * reset in place when its window turns: one map lookup per request. Bounded: entries whose windows
 * all ended are swept, and past `maxEntries` the oldest entries go first.
 */
export interface CountResult {
  readonly counts: readonly number[];
  readonly blocked: boolean;
}

interface Entry {
  /** Per window: the count, and the epoch ms its window ends. */
  readonly counts: number[];
  readonly ends: number[];
}

export class LocalCounters {
  private readonly entries = new Map<string, Entry>();
  private nextSweep = 0;

  constructor(private readonly maxEntries = 1_000_000) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Unless a window already reached its limit, counts the request in each window of `identifier`.
   * `limits[i]` and `ends[i]` (epoch ms the current window ends) describe window i.
   */
  count(identifier: string, limits: readonly number[], ends: readonly number[], now: number): CountResult {
    if (now >= this.nextSweep) this.sweep(now);
    let entry = this.entries.get(identifier);
    if (!entry) {
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      entry = { counts: limits.map(() => 0), ends: [...ends] };
      this.entries.set(identifier, entry);
    }
    const { counts } = entry;
    let blocked = false;
    for (let i = 0; i < limits.length; i++) {
      if (entry.ends[i]! <= now) {
        counts[i] = 0;
        entry.ends[i] = ends[i]!;
      }
      if (counts[i]! >= limits[i]!) blocked = true;
    }
    if (!blocked) for (let i = 0; i < counts.length; i++) counts[i]!++;
    return { counts, blocked };
  }

  /**
   * Drops entries whose windows all ended (callers gone quiet), at most every 10 s and only once
   * there are many.
   */
  private sweep(now: number): void {
    this.nextSweep = now + 10_000;
    if (this.entries.size < 10_000) return;
    for (const [key, entry] of this.entries) if (entry.ends.every((end) => end <= now)) this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
