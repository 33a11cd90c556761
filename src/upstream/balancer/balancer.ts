/**
 * Chooses a target of an upstream for one attempt of a request (runtime-agnostic: no sockets).
 * Targets with weight 0 or marked unhealthy get no traffic; a retry prefers a target not yet tried.
 */
import { hash32 } from "./hash.ts";
import { Target } from "./target.ts";

export type Algorithm = "round-robin" | "consistent-hashing" | "least-connections" | "latency";

export interface BalancerOptions {
  readonly algorithm: Algorithm;
  /** Ring points of consistent-hashing, shared among targets by weight. */
  readonly slots?: number;
}

/** Weight of a new latency sample in the moving average. */
const LATENCY_ALPHA = 0.3;

export class Balancer {
  readonly targets: readonly Target[];
  readonly algorithm: Algorithm;
  /** consistent-hashing: ring points (sorted hashes) and the target at each point. */
  readonly #points: Uint32Array;
  readonly #owners: Target[];

  constructor(targets: readonly { host: string; port: number; weight: number }[], options: BalancerOptions) {
    this.targets = targets.map((t) => new Target(t.host, t.port, t.weight));
    this.algorithm = options.algorithm;
    if (this.algorithm === "consistent-hashing") {
      [this.#points, this.#owners] = buildRing(this.targets, options.slots ?? 10000);
    } else {
      this.#points = new Uint32Array(0);
      this.#owners = [];
    }
  }

  /**
   * The target for the next attempt, or undefined when no target is usable. `hashValue` is the
   * consistent-hashing input (undefined: none, round-robin instead); `tried` are earlier attempts'.
   */
  pick(hashValue?: string, tried?: ReadonlySet<Target>): Target | undefined {
    const fresh = (t: Target) => t.usable && !tried?.has(t);
    // A retry goes to another target while one is left; then the tried ones may be used again.
    const accept = tried?.size && this.targets.some(fresh) ? fresh : (t: Target) => t.usable;
    if (this.algorithm === "consistent-hashing" && hashValue !== undefined && this.#points.length) return this.#onRing(hash32(hashValue), accept);
    if (this.algorithm === "least-connections") return this.#lowest(accept, (t) => (t.active + 1) / t.weight);
    if (this.algorithm === "latency") return this.#lowest(accept, (t) => t.latency * (t.active + 1));
    return this.#roundRobin(accept);
  }

  /** Records an answer's latency (latency algorithm). */
  observe(target: Target, ms: number): void {
    target.latency = target.latency === 0 ? ms : target.latency + LATENCY_ALPHA * (ms - target.latency);
  }

  /** nginx's smooth weighted round-robin: exact shares, spread out rather than in bursts. */
  #roundRobin(accept: (t: Target) => boolean): Target | undefined {
    let best: Target | undefined;
    let total = 0;
    for (const t of this.targets) {
      if (!accept(t)) continue;
      t.current += t.weight;
      total += t.weight;
      if (!best || t.current > best.current) best = t;
    }
    if (best) best.current -= total;
    return best;
  }

  #lowest(accept: (t: Target) => boolean, score: (t: Target) => number): Target | undefined {
    let best: Target | undefined;
    let bestScore = Infinity;
    // Ties are broken by round-robin position so equal targets share the load.
    for (const t of this.targets) {
      if (!accept(t)) continue;
      const s = score(t);
      if (s < bestScore || (s === bestScore && best && t.current > best.current)) {
        best = t;
        bestScore = s;
      }
    }
    if (best) {
      for (const t of this.targets) if (accept(t)) t.current += t.weight;
      best.current -= this.targets.reduce((sum, t) => sum + (accept(t) ? t.weight : 0), 0);
    }
    return best;
  }

  /** The first acceptable owner at or after the hash's point, walking the ring. */
  #onRing(h: number, accept: (t: Target) => boolean): Target | undefined {
    const points = this.#points;
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    for (let i = 0; i < points.length; i++) {
      const owner = this.#owners[(lo + i) % points.length]!;
      if (accept(owner)) return owner;
    }
    return undefined;
  }
}

/**
 * Ketama-style ring: each target owns points in proportion to its weight, placed by hashing
 * its name, so adding or removing a target moves only that target's share of the keys.
 */
function buildRing(targets: readonly Target[], slots: number): [Uint32Array, Target[]] {
  const weighted = targets.filter((t) => t.weight > 0);
  const total = weighted.reduce((s, t) => s + t.weight, 0);
  const entries: [number, Target][] = [];
  for (const t of weighted) {
    const n = Math.max(1, Math.round((slots * t.weight) / total));
    for (let i = 0; i < n; i++) entries.push([hash32(`${t.name}#${i}`), t]);
  }
  entries.sort((a, b) => a[0] - b[0]);
  return [Uint32Array.from(entries, (e) => e[0]), entries.map((e) => e[1])];
}
