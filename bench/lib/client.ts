/** A small closed-loop HTTP client for the runs wrk cannot express (one credential per request). */

export interface ClientRun {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  /** Milliseconds. */
  readonly p50: number;
  readonly p99: number;
  /** Count per HTTP status (0: the request failed). */
  readonly statuses: Readonly<Record<number, number>>;
}

function percentile(sorted: readonly number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Sends `total` requests, `concurrency` at a time; request `i` gets `headers(i)`. Stops early
 * after `timeLimitMs` (the result then counts what was sent).
 */
export async function closedLoop(
  url: string,
  total: number,
  concurrency: number,
  headers: (i: number) => Record<string, string>,
  timeLimitMs: number,
): Promise<ClientRun> {
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  let next = 0;
  const started = performance.now();
  const deadline = started + timeLimitMs;
  const worker = async () => {
    while (next < total && performance.now() < deadline) {
      const i = next++;
      const t = performance.now();
      let status = 0;
      try {
        const res = await fetch(url, { headers: headers(i), signal: AbortSignal.timeout(10_000) });
        await res.arrayBuffer();
        status = res.status;
      } catch {
        status = 0;
      }
      latencies.push(performance.now() - t);
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    seconds,
    rps: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    statuses,
  };
}
