/** `[[certificates]]`: certificates the TLS proxy listener serves by SNI (`[server.tls]` stays the default). */
import { z } from "zod";
import { filePath, kongTable, type SchemaContext } from "./fields.ts";

export const certificateSchema = (ctx: SchemaContext) =>
  kongTable("certificates", {
    cert: filePath(ctx).describe("PEM certificate (chain) served to callers that ask for one of `snis`."),
    key: filePath(ctx).describe("PEM private key of `cert`; `check` and the start refuse a key that does not match."),
    snis: z
      .array(
        z
          .string()
          .regex(
            /^(\*\.)?[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*$/,
            "expected a host name, optionally with a leading '*.' wildcard",
          )
          .transform((s) => s.toLowerCase()),
      )
      .min(1, "expected at least one server name")
      .describe("Server names (TLS SNI) this certificate is served for; `*.example.com` matches one label."),
  });
