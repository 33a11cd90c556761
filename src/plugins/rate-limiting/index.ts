/**
 * Kong's `rate-limiting` plugin: fixed windows (second … year) per consumer, credential, IP,
 * service, header or path, counted in this process (`local`) or in Redis (`redis`, shared by every
 * gateway on it). A request over a limit gets `error_code` (429) with `Retry-After`; the others
 * carry `RateLimit-Limit/Remaining/Reset` and `X-RateLimit-Limit/Remaining-<Window>`.
 */
import { createClusterHealth } from "../../cluster/health.ts";
import type { RedisLink } from "../../cluster/redis.ts";
import { RateLimitStoreError } from "../../errors.ts";
import type { PluginHandler, RequestContext } from "../../gateway/context.ts";
import { definePlugin } from "../types.ts";
import { LocalCounters, type CountResult } from "./local-counters.ts";
import { rateLimitingSchema, type RateLimitingConfig } from "./schema.ts";
import { period, TITLE, WINDOW_SECONDS, WINDOWS, type Window } from "./windows.ts";

/** Identifiers longer than this are cut: a header's value is the caller's to choose anyway. */
const MAX_IDENTIFIER = 256;

/** What the request is counted by: Kong's `limit_by`, falling back to the client IP. */
function identifierOf(config: RateLimitingConfig): (c: RequestContext) => string {
  const ip = (c: RequestContext) => `ip:${c.env.remoteAddress}`;
  switch (config.limit_by) {
    case "consumer":
      return (c) => (c.var.consumer ? `consumer:${c.var.consumer.id}` : c.var.credential !== undefined ? `credential:${c.var.credential}` : ip(c));
    case "credential":
      return (c) => (c.var.credential !== undefined ? `credential:${c.var.credential}` : ip(c));
    case "ip":
      return ip;
    case "service":
      return (c) => `service:${c.var.route.service.name}`;
    case "header": {
      const name = config.header_name!;
      return (c) => {
        const value = c.req.raw.headers.get(name);
        return value ? `header:${value.slice(0, MAX_IDENTIFIER)}` : ip(c);
      };
    }
    case "path": {
      const path = config.path!;
      return (c) => (c.req.path === path ? `path:${path}` : ip(c));
    }
  }
}

interface Limit {
  readonly window: Window;
  readonly limit: number;
  readonly limitHeader: string;
  readonly remainingHeader: string;
}

export const rateLimiting = definePlugin<RateLimitingConfig>({
  name: "rate-limiting",
  priority: 910, // Kong's: after authentication (1050) and acl (950)
  secretKeys: ["password"],
  schema: rateLimitingSchema,

  gatewayIssues(config, gateway) {
    if (config.policy === "redis" && config.redis.host === undefined && gateway.cluster.strategy !== "redis") {
      return [
        {
          key: "redis.host",
          message: "missing required key: 'policy' \"redis\" needs 'redis.host', or [cluster] strategy = \"redis\" to count in the fleet's Redis",
        },
      ];
    }
    return [];
  },

  warnings(config, gateway) {
    if (config.policy === "local" && gateway.server.workers > 1) {
      return [
        `policy: with [server] workers = ${gateway.server.workers}, each worker counts on its own ("local"), so a caller gets up to ${gateway.server.workers} times the limit; count in Redis with policy = "redis"`,
      ];
    }
    return [];
  },

  async create(config, ctx) {
    const limits: Limit[] = WINDOWS.filter((w) => config[w] !== undefined).map((window) => ({
      window,
      limit: config[window]!,
      limitHeader: `X-RateLimit-Limit-${TITLE[window]}`,
      remainingHeader: `X-RateLimit-Remaining-${TITLE[window]}`,
    }));
    const identify = identifierOf(config);
    const scope = ctx.scope ?? {};
    const errorBody = JSON.stringify({ message: config.error_message });

    let local: LocalCounters | undefined;
    let link: RedisLink | undefined;
    let ownLink = false;
    let prefix = "";
    if (config.policy === "local") {
      local = new LocalCounters();
    } else if (config.redis.host !== undefined) {
      const r = config.redis;
      const host = r.host!;
      const url = `${r.ssl ? "rediss" : "redis"}://${host.includes(":") ? `[${host}]` : host}:${r.port}/${r.database}`;
      // Loaded when used: the Redis client's modules are a large part of a small config's start.
      const { connectRedis, redisAddress } = await import("../../cluster/redis.ts");
      link = connectRedis({
        url,
        username: r.username,
        password: r.password,
        connectTimeout: r.timeout,
        commandTimeout: r.timeout,
        trustedCertificates: ctx.trustedCertificates,
        health: createClusterHealth(ctx.log, undefined, redisAddress(url)),
      });
      ownLink = true;
      await link.ready(r.timeout);
    } else {
      // `check` made sure there is a [cluster] Redis.
      link = ctx.cluster!.link;
      prefix = ctx.cluster!.prefix;
    }
    // The entry's scope names its counters, as Kong's route and service ids do: two entries never share one.
    const namespace = `${prefix}ratelimit:${encodeURIComponent(scope.route ?? "")}:${encodeURIComponent(scope.service ?? "")}:${encodeURIComponent(scope.consumer ?? "")}:`;

    let lastWarning = 0;
    const storeFailed = (error: unknown) => {
      if (!config.fault_tolerant) throw new RateLimitStoreError(`the rate-limiting counters are unavailable: ${(error as Error)?.message ?? error}`);
      // Logged at most every 10 s: a Redis that is down for an hour must not write a line per request.
      const now = Date.now();
      if (now - lastWarning > 10_000) {
        lastWarning = now;
        ctx.log.warn("rate_limiting.store_unavailable", { error: (error as Error)?.message ?? String(error), fault_tolerant: true });
      }
    };

    const limitValues = limits.map((l) => l.limit);
    // The windows in force, recomputed only when one of them turns (not per request).
    const starts = limits.map(() => 0);
    const ends = limits.map(() => 0);
    let turn = 0;
    const windowsAt = (now: number) => {
      if (now < turn) return;
      turn = Infinity;
      for (let i = 0; i < limits.length; i++) {
        const p = period(limits[i]!.window, now);
        starts[i] = p.start;
        ends[i] = p.end;
        if (p.end < turn) turn = p.end;
      }
    };
    const shared = async (identifier: string, now: number): Promise<CountResult> => {
      const keys = limits.map((l, i) => `${namespace}${identifier}:${starts[i]}:${l.window}`);
      // The TTL outlives the window a little: a clock a bit behind on another gateway still finds it.
      return link!.countWindows(
        keys,
        limitValues,
        ends.map((end) => end - now + 1000),
      );
    };

    /** Kong's headers: per window, and `RateLimit-*` for the window with the fewest left (on a tie the longer one). */
    const headersOf = (counts: readonly number[], now: number): [string, string][] => {
      const headers: [string, string][] = [];
      let limit = 0;
      let remaining = Infinity;
      let windowSeconds = 0;
      let reset = 1;
      for (let i = 0; i < limits.length; i++) {
        const l = limits[i]!;
        const left = Math.max(0, l.limit - counts[i]!);
        if (left < remaining || (left === remaining && WINDOW_SECONDS[l.window] > windowSeconds)) {
          limit = l.limit;
          remaining = left;
          windowSeconds = WINDOW_SECONDS[l.window];
          // Seconds until that window turns.
          reset = Math.max(1, Math.ceil((ends[i]! - now) / 1000));
        }
        if (!config.hide_client_headers) headers.push([l.limitHeader, String(l.limit)], [l.remainingHeader, String(left)]);
      }
      if (!config.hide_client_headers)
        headers.push(["RateLimit-Limit", String(limit)], ["RateLimit-Remaining", String(remaining)], ["RateLimit-Reset", String(reset)]);
      else headers.push(["Retry-After", String(reset)]); // kept only on a refusal
      return headers;
    };

    const handler: PluginHandler = async (c, next) => {
      const now = Date.now();
      windowsAt(now);
      let result: CountResult;
      if (local) result = local.count(identify(c), limitValues, ends, now);
      else {
        try {
          result = await shared(identify(c), now);
        } catch (error) {
          storeFailed(error);
          await next();
          return;
        }
      }
      if (result.blocked) {
        c.var.logFields.rate_limited = true;
        const headers = headersOf(result.counts, now);
        if (!config.hide_client_headers) headers.push(["Retry-After", headers[headers.length - 1]![1]]);
        headers.push(["Content-Type", "application/json; charset=utf-8"]);
        return new Response(errorBody, { status: config.error_code, headers });
      }
      if (config.hide_client_headers) return next();
      const headers = headersOf(result.counts, now);
      await next();
      try {
        const out = c.res.headers;
        for (const [name, value] of headers) out.set(name, value);
      } catch {
        // A response with immutable headers keeps its own.
      }
    };

    return {
      handler,
      async close() {
        local?.clear();
        if (ownLink) await link?.close();
      },
    };
  },
});
