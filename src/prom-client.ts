/**
 * prom-client's classes, from their own files: its index also loads the Pushgateway (node:http,
 * node:https) and the cluster aggregator (node:cluster), a large part of every start.
 * Typed from the package's index (src/prom-client-files.d.ts).
 */
import Counter from "prom-client/lib/counter.js";
import Gauge from "prom-client/lib/gauge.js";
import Histogram from "prom-client/lib/histogram.js";
import Registry from "prom-client/lib/registry.js";

export type { Metric } from "prom-client";
export { Counter, Gauge, Histogram, Registry };
