/** `[keys]`: the gateway's own signing keys (private_key_jwt) and where their public JWKS is served. */
import { z } from "zod";
import { filePath, seconds, table, type SchemaContext } from "./fields.ts";

export const keysSchema = (ctx: SchemaContext) =>
  table({
    jwks_file: filePath(ctx)
      .prefault("data/gateway-jwks.json")
      .describe("The gateway's private signing keys (a JWKS, mode 0600). Missing: generated on first need. Invalid: a start error, never replaced."),
    rotation_grace: seconds()
      .default(3600)
      .describe(
        "After `DELETE /openid-connect/jwks`, how long the previous public keys stay published, so the IdP can verify assertions in flight (s).",
      ),
    rotation_signing_delay: seconds()
      .default(60)
      .describe(
        "After `DELETE /openid-connect/jwks`, how long the previous key still signs client assertions unless the published JWKS is fetched sooner (s): an IdP that cached the old set keeps accepting them. `?immediate=true` skips it.",
      ),
    publish_path: z
      .string()
      .regex(/^\/[A-Za-z0-9._~/-]*$/, "expected a path of letters, digits and . _ ~ - / starting with '/' (e.g. \"/.well-known/gateway-jwks.json\")")
      .optional()
      .describe("Also serve the public JWKS at this path on the proxy listeners (before routing), for an IdP that cannot reach the admin API."),
  });

export type KeysConfig = z.output<ReturnType<typeof keysSchema>>;
