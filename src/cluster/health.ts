/**
 * Whether the fleet's Redis can be used right now, as operators see it: one `cluster.degraded`
 * log line when it stops answering, one `cluster.recovered` when it is back, a gauge in
 * `/metrics`, and a reason for `/status/ready`. Transitions only: a Redis that is down for an
 * hour logs once, not once per request.
 */
import { Counter, Gauge } from "../prom-client.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";

type SharedEvent = "hit" | "miss" | "stored" | "lock_wait" | "lock_timeout" | "error" | "replay_rejected" | "replay_local";

export interface ClusterHealth {
  /** True while Redis answers. */
  readonly available: boolean;
  /** Why it is not (no secrets: the address, never the URL). */
  readonly reason: string | undefined;
  /** Epoch ms of the last transition to degraded. */
  readonly since: number | undefined;
  degraded(reason: string): void;
  recovered(): void;
  /** Counts what the shared caches did (label values are fixed words). */
  event(item: string, event: SharedEvent): void;
}

export function createClusterHealth(log: Logger, metrics: Metrics | undefined, address: string): ClusterHealth {
  // Not yet connected counts as degraded until the first `ready`: requests are served locally meanwhile.
  let available = false;
  let reason: string | undefined = "not connected yet";
  let since: number | undefined = Date.now();
  let announced = false;
  const registers = metrics ? [metrics.registry] : [];
  const gauge = new Gauge({
    name: "gateway_cluster_degraded",
    help: "1 while the cluster's Redis is unreachable and only local caches are used, else 0.",
    registers,
  });
  gauge.set(1);
  const events = new Counter({
    name: "gateway_cluster_events_total",
    help: "Shared cache events by item (tokens, dpop_replay, keys) and event.",
    labelNames: ["item", "event"],
    registers,
  });
  const children = new Map<string, { inc(): void }>();

  return {
    get available() {
      return available;
    },
    get reason() {
      return reason;
    },
    get since() {
      return since;
    },
    degraded(why) {
      if (!available && announced) {
        reason = why;
        return;
      }
      available = false;
      reason = why;
      since = Date.now();
      announced = true;
      gauge.set(1);
      log.warn("cluster.degraded", { redis: address, reason: why, detail: "serving from local caches until redis answers again" });
    },
    recovered() {
      if (available) return;
      const down = since === undefined ? undefined : Date.now() - since;
      available = true;
      reason = undefined;
      since = undefined;
      gauge.set(0);
      if (announced) log.info("cluster.recovered", { redis: address, degraded_ms: down });
      else log.info("cluster.connected", { redis: address });
      announced = true;
    },
    event(item, event) {
      const key = `${item}|${event}`;
      let child = children.get(key);
      if (!child) {
        child = events.labels(item, event);
        children.set(key, child);
      }
      child.inc();
    },
  };
}
