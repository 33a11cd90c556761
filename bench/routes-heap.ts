/**
 * What the gateway with `size` generated routes keeps alive after start: live heap (MB, after a
 * full collection) with the parsed config alone and with the proxy app built on it, and the object
 * types that grew most. `bun bench/routes-heap.ts [--size 11000]`
 */
import { heapStats } from "bun:jsc";
import { parseConfig } from "../src/config/load.ts";
import { createProxyApp } from "../src/gateway/app.ts";
import { createLogger } from "../src/log.ts";
import { Metrics } from "../src/metrics.ts";
import { pluginRegistry } from "../src/plugins/registry.ts";
import { ConnectionPool } from "../src/upstream/pool.ts";
import { generateRoutes, routesToml } from "./lib/generated-routes.ts";
import { memoryConnect } from "./lib/memory-upstream.ts";
import { upstreamFetch } from "./lib/micro-harness.ts";

const argv = Bun.argv.slice(2);
const size = Number(argv[argv.indexOf("--size") + 1] ?? 11000) || 11000;
const live = () => {
  for (let i = 0; i < 3; i++) Bun.gc(true);
  return heapStats();
};
const mb = (s: ReturnType<typeof heapStats>) => (s.heapSize / 1024 / 1024).toFixed(2);
const log = createLogger("error");
let toml = routesToml(generateRoutes(size, size > 1 ? 1 / 11 : 0), "http://127.0.0.1:9");
const empty = live();
let config: unknown = parseConfig(toml, `/tmp/routes-${size}.toml`, pluginRegistry);
toml = "";
const parsed = live();
// Typed loosely as bench/routes-micro.ts's: the in-memory upstream is not a full socket.
const deps = {
  log,
  pluginContext: { log },
  metrics: new Metrics("micro", "bun"),
  upstreamFetch: () => upstreamFetch,
  upstreamPool: () =>
    new ConnectionPool({ hostname: "127.0.0.1", port: 9 }, memoryConnect as never, { poolSize: 256, maxRequests: 0, idleTimeoutMs: 60_000 }),
} as never;
const app = await createProxyApp(config as never, deps);
config = undefined;
const started = live();
const grown = Object.entries(started.objectTypeCounts)
  .map(([type, n]) => [type, n - (empty.objectTypeCounts[type] ?? 0)] as const)
  .filter(([, n]) => n > 1000)
  .sort((a, b) => b[1] - a[1]);
console.log(
  `${size} routes: live heap ${mb(empty)} MB before, ${mb(parsed)} MB with the config, ${mb(started)} MB with the app (config dropped by the caller)`,
);
console.log(grown.map(([type, n]) => `  ${type}: +${n}`).join("\n"));
(globalThis as { app?: unknown }).app = app;
