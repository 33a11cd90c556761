/** A `[[services]]` entry: the upstream a route proxies to, and how long each wait may last. */
import { z } from "zod";
import { entityName, kongTable, millis } from "./fields.ts";

export const serviceSchema = () =>
  kongTable("services", {
    name: entityName().describe("Unique name; routes and plugins refer to it."),
    url: z
      .url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" })
      .refine((u) => !/^[a-z]+:\/\/[^/?#]*@/i.test(u), "expected a URL without user:password (the admin API shows URLs, and the proxy does not send userinfo)")
      .transform((u) => new URL(u))
      .describe("Upstream URL: protocol, host, port and base path (Kong's `url` shorthand)."),
    connect_timeout: millis().default(60_000).describe("Time to open a connection to the upstream: TCP connect and TLS handshake together (ms)."),
    read_timeout: millis()
      .default(60_000)
      .describe("Time between two successive reads of the upstream's response, counted from when the request was sent: it bounds the wait for the response headers too (ms)."),
    write_timeout: millis().default(60_000).describe("Time between two successive writes of the request to the upstream (ms)."),
    retries: z.int().min(0).max(32767).default(5).describe("Retries after a failed connection, for requests without a body."),
    tls_verify: z.boolean().default(true).describe("Verify the upstream's certificate for https:// services."),
  });

