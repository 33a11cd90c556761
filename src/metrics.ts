/**
 * Prometheus metrics (prom-client). One registry per process, kept across config reloads.
 * Label values are names from the config or fixed words, never caller input (bounded cardinality).
 */
import { Counter, Gauge, Histogram, Registry, type Metric } from "./prom-client.ts";
import { FastCounter, FastHistogram, type CounterSeries, type HistogramSeries } from "./metrics-series.ts";

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export type TokenCacheEvent = "hit" | "miss" | "refresh" | "eviction" | "negative_hit" | "resurrected";
export type IdpEndpoint = "discovery" | "jwks" | "token" | "introspection";

type CollectDefaultMetrics = (options: { register: Registry }) => void;
const importDefaultMetrics = (): Promise<CollectDefaultMetrics> => import("prom-client/lib/defaultMetrics.js").then((m) => m.default);

export interface MetricsOptions {
  /** Told once when prom-client's process metrics cannot be built (e.g. their module fails to load). */
  readonly onDefaultMetricsError?: (error: unknown) => void;
  /** Where the process metrics come from (tests). */
  readonly importDefaultMetrics?: () => Promise<CollectDefaultMetrics>;
}

export class Metrics {
  readonly registry = new Registry();
  // The per-request metrics: one series object per route and per service, updated directly.
  readonly #requests = this.#register(new FastCounter("gateway_http_requests_total", "Proxied requests by route, service and status."));
  readonly #latency = this.#register(
    new FastHistogram("gateway_http_request_duration_seconds", "Time from request to response headers, by route.", LATENCY_BUCKETS),
  );
  readonly #upstreamLatency = this.#register(
    new FastHistogram("gateway_upstream_duration_seconds", "Time from sending to the upstream to its response headers, by service.", LATENCY_BUCKETS),
  );
  readonly #upstreamErrors = new Counter({
    name: "gateway_upstream_errors_total",
    help: "Upstream failures by service and kind (unavailable, timeout).",
    labelNames: ["service", "kind"],
    registers: [this.registry],
  });
  // Counted on every authenticated request: a series per (cache, event), updated directly.
  readonly #tokenCache = this.#register(
    new FastCounter(
      "gateway_token_cache_events_total",
      "Token cache events by cache and event (hit, miss, refresh, eviction, negative_hit, resurrected).",
    ),
  );
  readonly #idpRequests = new Counter({
    name: "gateway_idp_requests_total",
    help: "Calls to identity providers by endpoint and outcome.",
    labelNames: ["endpoint", "outcome"],
    registers: [this.registry],
  });
  readonly #idpLatency = new Histogram({
    name: "gateway_idp_request_duration_seconds",
    help: "Latency of calls to identity providers by endpoint.",
    labelNames: ["endpoint"],
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly #dpopReplays = new Counter({
    name: "gateway_dpop_replays_rejected_total",
    help: "DPoP proofs refused because their jti was seen before.",
    registers: [this.registry],
  });
  readonly #reloads = new Counter({
    name: "gateway_config_reloads_total",
    help: "Configuration reloads by outcome (success, failure).",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly #cacheSizes = new Map<string, () => number>();
  // Sizes are read at scrape time, so the hot path never updates a gauge.
  readonly #tokenCacheSize = new Gauge({
    name: "gateway_token_cache_entries",
    help: "Entries in a token cache.",
    labelNames: ["cache"],
    registers: [this.registry],
    collect: () => {
      for (const [cache, size] of this.#cacheSizes) this.#tokenCacheSize.set({ cache }, size());
    },
  });

  #targets: () => readonly { upstream: string; target: string; state: string }[] = () => [];
  // Kong's kong_upstream_target_health: 1 on the target's current state, 0 on the others.
  readonly #targetHealth = new Gauge({
    name: "gateway_upstream_target_health",
    help: "Health of each upstream target: 1 for its current state (healthy, unhealthy, healthchecks_off), 0 for the others.",
    labelNames: ["upstream", "target", "state"],
    registers: [this.registry],
    collect: () => {
      this.#targetHealth.reset();
      for (const t of this.#targets()) {
        for (const state of ["healthy", "unhealthy", "healthchecks_off"])
          this.#targetHealth.set({ upstream: t.upstream, target: t.target, state }, t.state.toLowerCase() === state ? 1 : 0);
      }
    },
  });

  readonly #options: MetricsOptions;
  constructor(version: string, runtime: string, options: MetricsOptions = {}) {
    this.#options = options;
    new Gauge({
      name: "gateway_build_info",
      help: "Version and runtime of this gateway.",
      labelNames: ["version", "runtime"],
      registers: [this.registry],
    }).set({ version, runtime }, 1);
    this.#ownMetrics = this.registry.getMetricsAsArray().length;
  }

  // prom-client's default (process) metrics load @opentelemetry/api and read the heap: built after
  // the listeners are up (startGateway) or at the first scrape, in the place they had at construction.
  readonly #ownMetrics: number;
  #defaults: Promise<void> | undefined;
  #defaultsFailed = false;
  /**
   * Never rejects: a failure is reported once (`onDefaultMetricsError`), /metrics serves the
   * gateway's own series meanwhile, and the next scrape tries again.
   */
  defaultMetrics(): Promise<void> {
    this.#defaults ??= (this.#options.importDefaultMetrics ?? importDefaultMetrics)()
      .then((collectDefaultMetrics) => {
        const before = this.registry.getMetricsAsArray();
        collectDefaultMetrics({ register: this.registry });
        const all = this.registry.getMetricsAsArray();
        if (before.length === this.#ownMetrics) return;
        const order = [...before.slice(0, this.#ownMetrics), ...all.slice(before.length), ...before.slice(this.#ownMetrics)];
        this.registry.clear();
        for (const metric of order) this.registry.registerMetric(metric as unknown as Metric);
      })
      .catch((error: unknown) => {
        this.#defaults = undefined;
        if (this.#defaultsFailed) return;
        this.#defaultsFailed = true;
        this.#options.onDefaultMetricsError?.(error);
      });
    return this.#defaults;
  }

  /** Labeled children are cached: prom-client hashes label sets on every call otherwise. */
  readonly #children = new Map<string, unknown>();
  #child<T>(key: string, make: () => T): T {
    let c = this.#children.get(key) as T | undefined;
    if (!c) {
      c = make();
      this.#children.set(key, c);
    }
    return c;
  }

  #register<T extends FastCounter | FastHistogram>(metric: T): T {
    this.registry.registerMetric(metric as unknown as Metric);
    return metric;
  }

  /** The request metrics of one route, built once per route: the hot path then only increments. */
  route(route: string, service: string): RouteMetrics {
    return new RouteMetrics(this.#requests, route, service, this.#latency.of({ route }));
  }
  /** The upstream latency series of one service. */
  upstreamSeries(service: string): HistogramSeries {
    return this.#upstreamLatency.of({ service });
  }
  request(route: string, service: string, status: number, seconds: number): void {
    this.#child(`r|${route}|${service}`, () => this.route(route, service)).request(status, seconds);
  }
  upstream(service: string, seconds: number): void {
    this.upstreamSeries(service).observe(seconds);
  }
  upstreamError(service: string, kind: "unavailable" | "timeout"): void {
    this.#upstreamErrors.inc({ service, kind });
  }
  tokenCache(cache: string, event: TokenCacheEvent): void {
    this.#child(`t|${cache}|${event}`, () => this.#tokenCache.of({ cache, event })).inc();
  }
  /** Registers a size function read at scrape time. */
  tokenCacheSize(cache: string, size: () => number): void {
    this.#cacheSizes.set(cache, size);
  }
  /** The upstream targets and their health, read at scrape time. */
  upstreamTargets(read: () => readonly { upstream: string; target: string; state: string }[]): void {
    this.#targets = read;
  }
  idp(endpoint: IdpEndpoint, outcome: string, seconds: number): void {
    this.#idpRequests.inc({ endpoint, outcome });
    this.#idpLatency.observe({ endpoint }, seconds);
  }
  dpopReplay(): void {
    this.#dpopReplays.inc();
  }
  reload(outcome: "success" | "failure"): void {
    this.#reloads.inc({ outcome });
  }
  async text(): Promise<string> {
    await this.defaultMetrics();
    return this.registry.metrics();
  }
  get contentType(): string {
    return this.registry.contentType;
  }
}

/** `gateway_http_requests_total` and `gateway_http_request_duration_seconds` of one route. */
export class RouteMetrics {
  readonly #byStatus = new Map<number, CounterSeries>();
  constructor(
    private readonly requests: FastCounter,
    private readonly route: string,
    private readonly service: string,
    private readonly latency: HistogramSeries,
  ) {}
  request(status: number, seconds: number): void {
    let counter = this.#byStatus.get(status);
    if (!counter) {
      counter = this.requests.of({ route: this.route, service: this.service, status: String(status) });
      this.#byStatus.set(status, counter);
    }
    counter.inc();
    this.latency.observe(seconds);
  }
}
