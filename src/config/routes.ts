/** A `[[routes]]` entry: what a request must look like to reach a service. */
import { z } from "zod";
import { entityName, kongTable } from "./fields.ts";

export const routeSchema = () =>
  kongTable("routes", {
      name: entityName().describe("Unique name; plugins refer to it."),
      service: entityName().describe("Name of the service requests are proxied to."),
      paths: z
        .array(z.string().regex(/^(\/|~)/, "expected a path starting with '/' (prefix) or '~' (regex)"))
        .default([])
        .describe("Path prefixes that match (`/api`), or regexes starting with `~`. The longest matching prefix wins."),
      hosts: z
        .array(z.string().regex(/^(\*\.)?[a-zA-Z0-9.-]+(\.\*)?(:\d+)?$/, "expected a host name, optionally with one leading or trailing '*' wildcard"))
        .default([])
        .describe("Host header values that match; one leading or trailing `*` wildcard allowed."),
      methods: z
        .array(z.string().regex(/^[A-Z]+$/, "expected an upper-case HTTP method"))
        .default([])
        .describe("HTTP methods that match; empty matches all."),
      protocols: z.array(z.enum(["http", "https"])).min(1).default(["http", "https"]).describe("Listener protocols that match."),
      strip_path: z.boolean().default(true).describe("Remove the matched path prefix before proxying."),
      preserve_host: z.boolean().default(false).describe("Send the caller's Host header upstream instead of the service's host."),
      path_handling: z.enum(["v0", "v1"]).default("v0").describe("Kong's rule for joining the service path and the request path."),
      regex_priority: z.int().default(0).describe("Order among regex paths: higher is tried first."),
    })
    .superRefine((route, ctx) => {
      if (!route.paths.length && !route.hosts.length && !route.methods.length) {
        ctx.addIssue({ code: "custom", message: "expected at least one of 'paths', 'hosts' or 'methods'" });
      }
      route.paths.forEach((p, i) => {
        if (!p.startsWith("~")) return;
        try {
          new RegExp(p.slice(1));
        } catch {
          ctx.addIssue({ code: "custom", path: ["paths", i], message: "expected a valid regular expression after '~'" });
        }
      });
    });

