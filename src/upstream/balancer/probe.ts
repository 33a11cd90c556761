/** The active health check's probe of one target: an HTTP(S) GET of `http_path`, or a TCP connect. */
import type { UpstreamConfig } from "../../config/upstreams.ts";
import type { FetchLike } from "../../runtime/types.ts";
import type { Outcome, Prober } from "./health.ts";
import type { Target } from "./target.ts";

export interface ProbeDeps {
  /** Fetch for `http`/`https` probes (with the upstream's trust settings). */
  readonly fetch: FetchLike;
  /** Opens and closes a TCP connection within `timeoutMs` (runtime edge). */
  readonly connect: (host: string, port: number, timeoutMs: number) => Promise<void>;
}

class ProbeTimeout extends Error {}

export function createProber(upstream: UpstreamConfig, deps: ProbeDeps): Prober {
  const active = upstream.healthchecks.active;
  const timeoutMs = active.timeout * 1000;
  const headers: [string, string][] = [];
  for (const [name, values] of Object.entries(active.headers)) for (const v of values) headers.push([name, v]);
  if (active.type === "tcp") {
    return async (target: Target): Promise<Outcome> => {
      try {
        await deps.connect(target.host, target.port, timeoutMs);
        return { kind: "connected" };
      } catch (error) {
        return { kind: (error as { timeout?: boolean }).timeout ? "timeout" : "tcp_failure" };
      }
    };
  }
  return async (target: Target): Promise<Outcome> => {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new ProbeTimeout());
    }, timeoutMs);
    try {
      const response = await deps.fetch(`${active.type}://${target.authority}${active.http_path}`, {
        headers,
        signal: controller.signal,
        redirect: "manual",
      });
      await response.body?.cancel().catch(() => {});
      return { kind: "http", status: response.status };
    } catch {
      return { kind: timedOut ? "timeout" : "tcp_failure" };
    } finally {
      clearTimeout(timer);
    }
  };
}
