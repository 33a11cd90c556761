/** A `[[routes]]` entry: what a request must look like to reach a service. */
import { z } from "zod";
import { parseCidr } from "../lib/ip.ts";
import { entityName, kongTable, table } from "./fields.ts";
import { EMPTY_LIST, EMPTY_RECORD, fastRoute, HOST, type RouteShare, METHOD, PATH, PROTOCOLS, REDIRECT_CODES, validRegex } from "./routes-fast.ts";

const SNI = /^(\*\.)?[a-zA-Z0-9.-]+(\.\*)?$/;

/** `{ ip = "10.0.0.0/8", port = 8443 }`: Kong's `sources` / `destinations` entries. */
const endpoint = () =>
  table({
    ip: z
      .string()
      .refine((v) => parseCidr(v) !== undefined, 'expected an IP address or CIDR block (e.g. "10.0.0.0/8", "::1")')
      .optional()
      .describe("IP address or CIDR block."),
    port: z.int().min(0).max(65535).optional().describe("Port."),
  }).refine((e) => e.ip !== undefined || e.port !== undefined, "expected 'ip', 'port' or both");

const none = () => EMPTY_LIST;

export const routeSchema = () =>
  kongTable("routes", {
    name: entityName().describe("Unique name; plugins refer to it."),
    service: entityName().describe("Name of the service requests are proxied to."),
    paths: z
      .array(z.string().regex(PATH, "expected a path starting with '/' (prefix) or '~' (regex)"))
      .default(none)
      .describe("Path prefixes that match (`/api`), or regexes starting with `~`. Regexes are tried before prefixes, the longest prefix wins."),
    hosts: z
      .array(z.string().regex(HOST, "expected a host name, optionally with one leading or trailing '*' wildcard"))
      .default(none)
      .describe(
        "Host header values that match; one leading or trailing `*` wildcard allowed; with `:port`, the Host header's port (or the listener's).",
      ),
    methods: z
      .array(z.string().regex(METHOD, "expected an upper-case HTTP method"))
      .default(none)
      .describe("HTTP methods that match; empty matches all."),
    headers: z
      .record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, "expected a header name"), z.array(z.string()).min(1, "expected at least one value"))
      .default(() => EMPTY_RECORD)
      .describe(
        "Request headers that must be present, name → values (any one matches, case-insensitive); a value starting with `~*` is a case-insensitive regex.",
      ),
    snis: z
      .array(z.string().regex(SNI, "expected a server name, optionally with one leading or trailing '*' wildcard"))
      .default(none)
      .describe("TLS server names that match (HTTPS only; where the runtime does not report the SNI, the Host header's name stands in)."),
    sources: z.array(endpoint()).default(none).describe('Client addresses that match: `{ ip = "CIDR", port = N }`, either or both.'),
    destinations: z.array(endpoint()).default(none).describe('Listener addresses that match: `{ ip = "CIDR", port = N }`, either or both.'),
    protocols: z
      .array(z.enum(PROTOCOLS))
      .min(1)
      .default(["http", "https"])
      .describe(
        "Protocols the route allows; checked after matching, as Kong does: HTTP on an HTTPS-only route answers 426 (or redirects), a non-WebSocket request on a ws/wss-only route 426.",
      ),
    https_redirect_status_code: z
      .literal(REDIRECT_CODES, { error: "expected 426, 301, 302, 307 or 308" })
      .default(426)
      .describe("Answer to HTTP on an HTTPS-only route: 426 Upgrade Required, or a redirect to https with this status."),
    strip_path: z.boolean().default(true).describe("Remove the matched path prefix (or regex match) before proxying."),
    preserve_host: z.boolean().default(false).describe("Send the caller's Host header upstream instead of the service's host."),
    path_handling: z.enum(["v0", "v1"]).default("v0").describe("Kong's rule for joining the service path and the request path."),
    regex_priority: z.int().default(0).describe("Order among routes with regex paths and otherwise equal priority: higher is tried first."),
  }).superRefine((route, ctx) => {
    const fields = [route.paths, route.hosts, route.methods, Object.keys(route.headers), route.snis, route.sources, route.destinations];
    if (!fields.some((f) => f.length)) {
      ctx.addIssue({
        code: "custom",
        message: "expected at least one of 'paths', 'hosts', 'methods', 'headers', 'snis', 'sources' or 'destinations'",
      });
    }
    route.paths.forEach((p, i) => {
      if (p.startsWith("~") && !validRegex(p.slice(1)))
        ctx.addIssue({ code: "custom", path: ["paths", i], message: "expected a valid regular expression after '~'" });
    });
    for (const [name, values] of Object.entries(route.headers)) {
      if (name.toLowerCase() === "host")
        ctx.addIssue({ code: "custom", path: ["headers", name], message: "expected 'hosts' for the Host header, not 'headers'" });
      values.forEach((v, i) => {
        if (v.startsWith("~*") && !validRegex(v.slice(2), "i"))
          ctx.addIssue({ code: "custom", path: ["headers", name, i], message: "expected a valid regular expression after '~*'" });
      });
    }
    if (route.snis.length && !route.protocols.some((p) => p === "https" || p === "wss")) {
      ctx.addIssue({ code: "custom", path: ["snis"], message: "expected 'protocols' to include \"https\" or \"wss\" when 'snis' is set" });
    }
  });

/**
 * The routes as loading validates them: when every entry has a common shape, routes-fast.ts
 * alone (zod's walk of the array cost ~30 ms more, cold, at 11 000 routes); otherwise each entry
 * by the fast path or the schema above, whose issues stand as they are. Typed as the schema's
 * array: docs and the JSON Schema come from `routeSchema` itself.
 */
export const loadedRoutesSchema = () => {
  // Built on the first entry the fast path leaves to the schema: most files have none.
  let list: z.ZodArray | undefined;
  const schemas = () => {
    const full = routeSchema();
    const each = z.unknown().transform((value, ctx) => {
      const fast = fastRoute(value);
      if (fast) return fast;
      const parsed = full.safeParse(value, { reportInput: true, jitless: true });
      if (parsed.success) return parsed.data;
      for (const issue of parsed.error.issues) ctx.addIssue(issue as never);
      return z.NEVER;
    });
    return z.array(each);
  };
  return z.unknown().transform((value, ctx) => {
    if (Array.isArray(value)) {
      const out: NonNullable<ReturnType<typeof fastRoute>>[] = [];
      const share: RouteShare = new Map();
      for (const entry of value) {
        const fast = fastRoute(entry, share);
        if (!fast) break;
        out.push(fast);
      }
      if (out.length === value.length) return out;
    }
    const parsed = (list ??= schemas()).safeParse(value, { reportInput: true, jitless: true });
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues) ctx.addIssue(issue as never);
    return z.NEVER;
  }) as unknown as z.ZodArray<ReturnType<typeof routeSchema>>;
};
