/**
 * `[[upstreams]]` in Kong's vocabulary: a virtual host name that services point at, balanced over
 * its `[[upstreams.targets]]`, with active and passive health checks.
 */
import { z } from "zod";
import { filePath, kongTable, seconds, table, type SchemaContext } from "./fields.ts";

/** Kong's upstream names are host names: a service's `host` refers to one. */
const upstreamName = () =>
  z
    .string()
    .regex(
      /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/,
      "expected a host name (letters, digits, '-' and '.')",
    );

interface TargetAddress {
  readonly host: string;
  readonly port: number;
}

/** `host:port` or `[v6]:port`; Kong's port-less form is refused (the port would be a guess). */
function parseTarget(value: string): TargetAddress | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([a-zA-Z0-9.-]+)):(\d{1,5})$/.exec(value);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? m[2]!, port };
}

const statuses = (defaults: number[]) =>
  z.array(z.int().min(100, "expected an HTTP status 100-999").max(999, "expected an HTTP status 100-999")).default(defaults);

const count = (what: string) => z.int().min(0).max(255).default(0).describe(`${what}; 0 disables this kind of count.`);

const KONG_PASSIVE_HEALTHY = [200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308];

const activeSchema = () =>
  table({
    type: z.enum(["http", "https", "tcp"]).default("http").describe("How a target is probed: an HTTP(S) GET of `http_path`, or a TCP connect."),
    http_path: z.string().regex(/^\//, "expected an absolute path starting with '/'").default("/").describe("Path of the probe request."),
    timeout: seconds(65535).default(1).describe("Seconds a probe may take; longer counts as a timeout."),
    concurrency: z.int().min(1).max(1024).default(10).describe("Probes run at the same time for one upstream."),
    https_verify_certificate: z.boolean().default(true).describe("Verify the target's certificate on `https` probes."),
    headers: z.record(z.string(), z.array(z.string())).default({}).describe("Extra headers of the probe request."),
    healthy: table({
      interval: seconds(65535).default(0).describe("Seconds between probes of a healthy target; 0 stops probing healthy targets."),
      successes: count("Successful probes that mark an unhealthy target healthy"),
      http_statuses: statuses([200, 302]).describe("Probe statuses that count as a success."),
    })
      .prefault({})
      .describe("When probes count a target as healthy, and how often healthy targets are probed."),
    unhealthy: table({
      interval: seconds(65535).default(0).describe("Seconds between probes of an unhealthy target; 0 stops probing unhealthy targets."),
      http_failures: count("Probes with an `http_statuses` answer that mark a target unhealthy"),
      tcp_failures: count("Failed connections that mark a target unhealthy"),
      timeouts: count("Probe timeouts that mark a target unhealthy"),
      http_statuses: statuses([429, 404, 500, 501, 502, 503, 504, 505]).describe("Probe statuses that count as an HTTP failure."),
    })
      .prefault({})
      .describe("When probes count a target as unhealthy, and how often unhealthy targets are probed."),
  });

const passiveSchema = () =>
  table({
    type: z
      .enum(["http", "https", "tcp"])
      .default("http")
      .describe("What is counted from proxied traffic: HTTP statuses, or (`tcp`) connection outcomes only."),
    healthy: table({
      successes: count("Successful proxied responses that mark an unhealthy target healthy"),
      http_statuses: statuses(KONG_PASSIVE_HEALTHY).describe("Upstream statuses that count as a success."),
    })
      .prefault({})
      .describe("When proxied traffic counts a target as healthy again."),
    unhealthy: table({
      http_failures: count("Proxied responses with an `http_statuses` status that mark a target unhealthy"),
      tcp_failures: count("Failed connections that mark a target unhealthy"),
      timeouts: count("Timed-out proxied requests that mark a target unhealthy"),
      http_statuses: statuses([429, 500, 503]).describe("Upstream statuses that count as an HTTP failure."),
    })
      .prefault({})
      .describe("When proxied traffic counts a target as unhealthy."),
  });

const HASH_INPUTS = ["none", "consumer", "ip", "header", "cookie", "path", "query_arg", "uri_capture"] as const;

const targetSchema = () =>
  kongTable("targets", {
    target: z
      .string()
      .transform((value, ctx) => {
        const parsed = parseTarget(value);
        if (!parsed) {
          ctx.addIssue({ code: "custom", message: `expected "host:port" (e.g. "10.0.0.7:8080" or "[::1]:8080"), got "${value}"` });
          return z.NEVER;
        }
        return { ...parsed, name: value };
      })
      .describe('Address of one instance, `"host:port"`.'),
    weight: z
      .int()
      .min(0, "expected a weight 0-65535")
      .max(65535, "expected a weight 0-65535")
      .default(100)
      .describe("Share of traffic relative to the other targets; 0 takes the target out of the balancer."),
  });

export const upstreamSchema = (ctx: SchemaContext) =>
  kongTable("upstreams", {
    name: upstreamName().describe("Host name services use in `url` (or `host`) to be balanced over this upstream's targets."),
    algorithm: z
      .enum(["round-robin", "consistent-hashing", "least-connections", "latency"])
      .default("round-robin")
      .describe("How a target is chosen: weighted round-robin, a hash of `hash_on`, fewest requests in flight per weight, or lowest recent latency."),
    hash_on: z.enum(HASH_INPUTS).default("none").describe("Input of `consistent-hashing`."),
    hash_fallback: z
      .enum(HASH_INPUTS)
      .default("none")
      .describe("Input of `consistent-hashing` when `hash_on` gives none (header missing, no consumer)."),
    hash_on_header: z.string().optional().describe('Header whose value is hashed, for `hash_on = "header"`.'),
    hash_fallback_header: z.string().optional().describe('Header whose value is hashed, for `hash_fallback = "header"`.'),
    hash_on_cookie: z.string().optional().describe('Cookie whose value is hashed, for `hash_on` or `hash_fallback` `"cookie"`.'),
    hash_on_cookie_path: z
      .string()
      .regex(/^\/[^;,\s]*$/, "expected an absolute path without ';', ',' or spaces")
      .default("/")
      .describe(
        "`Path` of the cookie the gateway sets when a request lacks `hash_on_cookie` (it then picks a target and names it in the cookie, as Kong).",
      ),
    hash_on_query_arg: z.string().optional().describe('Query argument whose value is hashed, for `hash_on = "query_arg"`.'),
    hash_fallback_query_arg: z.string().optional().describe('Query argument whose value is hashed, for `hash_fallback = "query_arg"`.'),
    hash_on_uri_capture: z
      .string()
      .regex(/^[A-Za-z_$][\w$]*$|^\d+$/, "expected a capture group's name or number")
      .optional()
      .describe('Capture group (name or number) of the matched route\'s regex path whose value is hashed, for `hash_on = "uri_capture"`.'),
    hash_fallback_uri_capture: z
      .string()
      .regex(/^[A-Za-z_$][\w$]*$|^\d+$/, "expected a capture group's name or number")
      .optional()
      .describe('Capture group (name or number) of the matched route\'s regex path whose value is hashed, for `hash_fallback = "uri_capture"`.'),
    client_certificate: table({
      cert: filePath(ctx).describe("PEM certificate (chain) presented to the targets."),
      key: filePath(ctx).describe("PEM private key of `cert`."),
    })
      .optional()
      .describe(
        "Client certificate for mutual TLS to this upstream's targets (Kong's `client_certificate`, as files), for https services and `https` probes; a service's own `client_certificate` wins.",
      ),
    slots: z.int().min(10).max(65536).default(10000).describe("Points on the consistent-hashing ring, shared among targets by weight."),
    host_header: z
      .string()
      .optional()
      .describe("Host header sent to the targets; default the target's `host:port` (unless the route has `preserve_host`)."),
    healthchecks: table({
      active: activeSchema().prefault({}).describe("Probes sent on a timer to each target (`healthy.interval`, `unhealthy.interval`)."),
      passive: passiveSchema()
        .prefault({})
        .describe("Counting of the outcomes of proxied requests (no probes: a target marked unhealthy comes back only through active checks)."),
    })
      .prefault({})
      .describe("Active probes and passive counting; with every threshold 0 (the default) targets are never marked unhealthy."),
    targets: z.array(targetSchema()).default([]).describe("The instances behind this upstream (`[[upstreams.targets]]`)."),
  }).superRefine((u, ctx) => {
    const seen = new Set<string>();
    u.targets.forEach((t, i) => {
      const key = `${t.target.host.toLowerCase()}:${t.target.port}`;
      if (seen.has(key))
        ctx.addIssue({ code: "custom", path: ["targets", i, "target"], message: `expected each target once, "${t.target.name}" is listed twice` });
      seen.add(key);
    });
    const needs = (
      input: string,
      key:
        | "hash_on_header"
        | "hash_fallback_header"
        | "hash_on_cookie"
        | "hash_on_query_arg"
        | "hash_fallback_query_arg"
        | "hash_on_uri_capture"
        | "hash_fallback_uri_capture",
      which: "hash_on" | "hash_fallback",
    ) => {
      if (u[which] === input && !u[key]) ctx.addIssue({ code: "custom", path: [key], message: `expected '${key}' because '${which}' is "${input}"` });
    };
    needs("header", "hash_on_header", "hash_on");
    needs("header", "hash_fallback_header", "hash_fallback");
    needs("cookie", "hash_on_cookie", "hash_on");
    needs("cookie", "hash_on_cookie", "hash_fallback");
    needs("query_arg", "hash_on_query_arg", "hash_on");
    needs("query_arg", "hash_fallback_query_arg", "hash_fallback");
    needs("uri_capture", "hash_on_uri_capture", "hash_on");
    needs("uri_capture", "hash_fallback_uri_capture", "hash_fallback");
    // Kong: a missing cookie is generated, so a cookie always gives a value and a fallback is never used.
    if (u.hash_on === "cookie" && u.hash_fallback !== "none")
      ctx.addIssue({
        code: "custom",
        path: ["hash_fallback"],
        message: 'expected "none" because \'hash_on\' is "cookie" (a missing cookie is generated)',
      });
    if (u.hash_on === "none" && u.hash_fallback !== "none")
      ctx.addIssue({ code: "custom", path: ["hash_fallback"], message: 'expected "none" because \'hash_on\' is "none"' });
    if (
      u.hash_fallback !== "none" &&
      u.hash_fallback === u.hash_on &&
      u.hash_on !== "header" &&
      u.hash_on !== "query_arg" &&
      u.hash_on !== "uri_capture"
    )
      ctx.addIssue({ code: "custom", path: ["hash_fallback"], message: "expected a different input than 'hash_on'" });
    if (u.hash_on !== "none" && u.algorithm !== "consistent-hashing")
      ctx.addIssue({ code: "custom", path: ["hash_on"], message: `expected "none" unless 'algorithm' is "consistent-hashing"` });
  });

export type UpstreamConfig = z.output<ReturnType<typeof upstreamSchema>>;
export type HealthchecksConfig = UpstreamConfig["healthchecks"];
