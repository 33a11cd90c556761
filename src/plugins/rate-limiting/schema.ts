/** The `rate-limiting` plugin's config: Kong's names and defaults, checked once at start. */
import { z } from "zod";
import { millis, table } from "../../config/fields.ts";
import { WINDOWS } from "./windows.ts";

const limit = (window: string) =>
  z.number("expected a number of requests").positive("expected a limit above 0").optional().describe(`Requests allowed per ${window}.`);

const redisTable = () =>
  table({
    host: z.string().min(1).optional().describe("Redis host of the counters; unset: the `[cluster]` Redis."),
    port: z.int().min(1).max(65535).default(6379).describe("Redis port."),
    username: z.string().min(1).optional().describe("Redis ACL user."),
    password: z.string().min(1).optional().describe("Redis password."),
    database: z.int().min(0).max(15).default(0).describe("Redis database number."),
    timeout: millis().min(1).default(2000).describe("Timeout of connecting and of each Redis command (ms)."),
    ssl: z
      .boolean()
      .default(false)
      .describe("Connect with TLS (`rediss://`), verifying the server against the system roots and `[server] trusted_certificates`.")
      .meta({ kong: "same; Kong's `ssl_verify` defaults to false, this gateway always verifies" }),
  });

export const rateLimitingSchema = () =>
  table({
    second: limit("second"),
    minute: limit("minute"),
    hour: limit("hour"),
    day: limit("day"),
    month: limit("month (calendar, UTC)"),
    year: limit("year (calendar, UTC)"),
    limit_by: z
      .enum(["consumer", "credential", "ip", "service", "header", "path"])
      .default("consumer")
      .describe(
        "What is counted: the `consumer` (else its credential, else the IP), the `credential`, the client `ip`, the `service`, a `header` (`header_name`) or a `path`; a caller without one is counted by IP.",
      ),
    header_name: z
      .string()
      .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, "expected an HTTP header name")
      .optional()
      .describe('The header counted with `limit_by = "header"`.'),
    path: z
      .string()
      .regex(/^\/(?!.*\/\/)/, "expected a path starting with '/' without empty segments")
      .optional()
      .describe('The request path counted with `limit_by = "path"` (other paths: by IP).'),
    policy: z
      .enum(["local", "redis", "cluster"])
      .default("local")
      .describe("Where counters live: `local` (this process, exact) or `redis` (shared by every gateway on it: atomic, one round trip per request).")
      .meta({ kong: "same; Kong's `cluster` (its database) does not exist here: use `redis`" }),
    fault_tolerant: z.boolean().default(true).describe("When Redis fails, let requests through uncounted (and log it); false: answer 500."),
    hide_client_headers: z
      .boolean()
      .default(false)
      .describe("Do not send the `RateLimit-*` and `X-RateLimit-*` headers (a 429 still carries `Retry-After`)."),
    error_code: z.int().min(400).max(599).default(429).describe("Status of a refused request."),
    error_message: z.string().default("API rate limit exceeded").describe("The `message` of a refused request."),
    redis: redisTable().prefault({}).describe('The Redis of `policy = "redis"` when it is not the `[cluster]` one.'),
  }).superRefine((c, ctx) => {
    const set = WINDOWS.filter((w) => c[w] !== undefined);
    if (set.length === 0)
      ctx.addIssue({ code: "custom", path: ["minute"], message: `missing required key: at least one of ${WINDOWS.map((w) => `'${w}'`).join(", ")}` });
    // Kong's rule: a longer window cannot allow fewer requests than a shorter one.
    for (let i = 1; i < set.length; i++) {
      const shorter = set[i - 1]!;
      const longer = set[i]!;
      if (c[longer]! < c[shorter]!)
        ctx.addIssue({
          code: "custom",
          path: [longer],
          message: `expected a limit not below '${shorter}' (${c[shorter]}): the limit for ${longer} (${c[longer]}) cannot be lower than the limit for ${shorter}`,
        });
    }
    if (c.limit_by === "header" && c.header_name === undefined)
      ctx.addIssue({ code: "custom", path: ["header_name"], message: "missing required key: 'limit_by' \"header\" needs 'header_name'" });
    if (c.limit_by === "path" && c.path === undefined)
      ctx.addIssue({ code: "custom", path: ["path"], message: "missing required key: 'limit_by' \"path\" needs 'path'" });
    if (c.policy === "cluster")
      ctx.addIssue({
        code: "custom",
        path: ["policy"],
        message: '"cluster" (Kong\'s database policy) is not supported: use "redis", with the [cluster] Redis or a \'redis\' table',
      });
  });

export type RateLimitingConfig = z.output<ReturnType<typeof rateLimitingSchema>>;
