/** A `[[services]]` entry: the upstream a route proxies to, how long each wait may last, and its TLS. */
import { z } from "zod";
import { entityName, filePath, kongTable, millis, table, type SchemaContext } from "./fields.ts";

const SPLIT_KEYS = ["protocol", "host", "port", "path"] as const;

export const serviceSchema = (ctx: SchemaContext) =>
  kongTable("services", {
    name: entityName().describe("Unique name; routes and plugins refer to it."),
    url: z
      .url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" })
      .refine(
        (u) => !/^[a-z]+:\/\/[^/?#]*@/i.test(u),
        "expected a URL without user:password (the admin API shows URLs, and the proxy does not send userinfo)",
      )
      .transform((u) => new URL(u))
      .optional()
      .describe(
        "Upstream URL: protocol, host, port and base path (Kong's `url` shorthand). A host that names an `[[upstreams]]` is balanced over its targets.",
      ),
    protocol: z.enum(["http", "https"]).optional().describe("Instead of `url`: the protocol to the upstream (default `http`)."),
    host: z
      .string()
      .regex(/^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9.-]+)$/, "expected a host name or an IP address")
      .optional()
      .describe("Instead of `url`: the upstream's host, or the name of an `[[upstreams]]`."),
    port: z
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe("Instead of `url`: the upstream's port (default 80 for http, 443 for https; Kong's default is always 80)."),
    path: z
      .string()
      .regex(/^\//, "expected a path starting with '/'")
      .optional()
      .describe("Instead of `url`: the base path requests are proxied under."),
    connect_timeout: millis().default(60_000).describe("Time to open a connection to the upstream: TCP connect and TLS handshake together (ms)."),
    read_timeout: millis()
      .default(60_000)
      .describe(
        "Time between two successive reads of the upstream's response, counted from when the request was sent: it bounds the wait for the response headers too (ms).",
      ),
    write_timeout: millis().default(60_000).describe("Time between two successive writes of the request to the upstream (ms)."),
    retries: z
      .int()
      .min(0)
      .max(32767)
      .default(5)
      .describe("Retries after a failed connection, for requests without a body; with an `[[upstreams]]`, each retry goes to another target."),
    tls_verify: z.boolean().default(true).describe("Verify the upstream's certificate for https:// services."),
    tls_verify_depth: z
      .int()
      .min(0, "expected a depth 0-64")
      .max(64, "expected a depth 0-64")
      .optional()
      .describe(
        "Most CA certificates allowed between the upstream's certificate and the trusted root (OpenSSL's verify depth, as Kong); a longer chain fails the handshake (502). Unset: no limit of the gateway's own.",
      ),
    ca_certificates: z
      .array(filePath(ctx))
      .default([])
      .describe("PEM files with CAs trusted for this service's upstream only, on top of `[server] trusted_certificates`."),
    client_certificate: table({
      cert: filePath(ctx).describe("PEM certificate (chain) presented to the upstream."),
      key: filePath(ctx).describe("PEM private key of `cert`."),
    })
      .optional()
      .describe(
        "Client certificate for mutual TLS to the upstream (Kong's `client_certificate`, as files); for a balanced service it wins over the `[[upstreams]]` one.",
      ),
  }).transform((service, issues) => {
    const split = SPLIT_KEYS.filter((k) => service[k] !== undefined);
    const { protocol, host, port, path, url, ...rest } = service;
    if (url) {
      for (const k of split)
        issues.addIssue({ code: "custom", path: [k], message: "expected either 'url' or the split form 'protocol'/'host'/'port'/'path', not both" });
      return split.length ? z.NEVER : { ...rest, url };
    }
    if (!host) {
      issues.addIssue({ code: "custom", path: ["url"], message: "missing required key, expected 'url' or 'host'" });
      return z.NEVER;
    }
    const scheme = protocol ?? "http";
    return { ...rest, url: new URL(`${scheme}://${host}:${port ?? (scheme === "https" ? 443 : 80)}${path ?? ""}`) };
  });
