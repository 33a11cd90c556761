/**
 * The config keys of the gateway's own client (Kong's names), shared by every plugin that calls
 * the IdP as the gateway: their schema, the checks `check` can make without files or network,
 * and the settings `createGatewayClient` takes.
 */
import { z } from "zod";
import { filePath, oneOrMany, type SchemaContext } from "../../config/fields.ts";
import { SIGNING_ALGORITHMS } from "../../keys/jwk.ts";
import { HMAC_ALGORITHMS } from "./secret-jwt.ts";
import {
  CLIENT_AUTH_METHODS,
  clientAuthIssues,
  defaultClientAuth,
  KONG_KEY_NAMES,
  type ClientAuthKeyNames,
  type ClientAuthMethod,
  type ClientAuthSettings,
} from "./client-auth.ts";

/** Kong takes a list (one entry per client); the gateway is one client per plugin, so one entry. */
const single = <T extends z.ZodType<string>>(item: T, what: string) =>
  z.union([item, z.array(item)]).transform((value, ctx): z.output<T> => {
    if (!Array.isArray(value)) return value as z.output<T>;
    if (value.length !== 1) {
      ctx.addIssue({ code: "custom", message: `expected one ${what}, got ${value.length}: a plugin is one client of the IdP` });
      return z.NEVER;
    }
    return value[0] as z.output<T>;
  });

const httpUrl = () =>
  z
    .url({ protocol: /^https?$/, error: (issue) => (issue.input === undefined ? undefined : "expected an http:// or https:// URL") })
    .refine((u) => !u.includes("#"), "expected a URL without a fragment");

/** `client_id` … `mtls_introspection_endpoint`, as flat keys (openid-connect's table). */
export const gatewayClientFields = (ctx: SchemaContext) => ({
  client_id: single(z.string().min(1), "client id")
    .optional()
    .describe("The gateway's own client id at the IdP: it authenticates with it for `password` and `introspection`.")
    .meta({ kong: "same; Kong takes a list of clients" }),
  client_secret: single(z.string().min(1), "client secret")
    .optional()
    .describe("The secret of `client_id`, for `client_secret_basic`, `client_secret_post` and `client_secret_jwt`.")
    .meta({ kong: "same; Kong takes a list of clients" }),
  client_auth: oneOrMany(z.enum(CLIENT_AUTH_METHODS))
    .optional()
    .describe(
      "How the gateway authenticates as `client_id`: `client_secret_basic`, `client_secret_post`, `client_secret_jwt`, `private_key_jwt`, `tls_client_auth`, `self_signed_tls_client_auth` or `none`; with several, the first the IdP says it supports. Unset: `client_secret_basic` with a secret, else `tls_client_auth` with a certificate, else `private_key_jwt`.",
    )
    .meta({ kong: "same" }),
  client_alg: single(z.enum([...SIGNING_ALGORITHMS, ...HMAC_ALGORITHMS]), "algorithm")
    .default("RS256")
    .describe(
      "Algorithm of client assertions: an asymmetric one for `private_key_jwt` (a key for it is taken from, or added to, `[keys] jwks_file`), `HS256`/`HS384`/`HS512` for `client_secret_jwt` (which uses HS256 when `client_alg` is not an `HS*` one).",
    )
    .meta({ kong: "same" }),
  client_jwk: z
    .string()
    .min(1)
    .optional()
    .describe(
      "The `kid` of the key in `[keys] jwks_file` to sign `private_key_jwt` assertions with (it must have `client_alg`); unset: the current key for `client_alg`.",
    )
    .meta({ kong: "Kong takes the private JWK itself; here the `kid` of a key the gateway holds" }),
  client_assertion_audience: z
    .enum(["issuer", "token_endpoint"])
    .default("issuer")
    .describe(
      "`aud` of `private_key_jwt` and `client_secret_jwt` assertions: the issuer identifier (as current specifications say), or the token endpoint URL for IdPs that want that.",
    )
    .meta({ kong: "" }),
  tls_client_auth_cert: filePath(ctx)
    .optional()
    .describe("PEM client certificate for `tls_client_auth` / `self_signed_tls_client_auth`.")
    .meta({ kong: "Kong's `tls_client_auth_cert_id` (a Certificate entity)" }),
  tls_client_auth_key: filePath(ctx).optional().describe("PEM private key of `tls_client_auth_cert`.").meta({ kong: "" }),
  tls_client_auth_ssl_verify: z.boolean().default(true).describe("Verify the IdP's certificate on the mutual TLS connection."),
  mtls_token_endpoint: httpUrl()
    .optional()
    .describe("Token endpoint for the mutual TLS methods; unset: the discovered `mtls_endpoint_aliases`, else `token_endpoint`."),
  mtls_introspection_endpoint: httpUrl()
    .optional()
    .describe("Introspection endpoint for the mutual TLS methods; unset: the discovered `mtls_endpoint_aliases`, else `introspection_endpoint`."),
});

type Fields = z.output<z.ZodObject<ReturnType<typeof gatewayClientFields>>>;

/** The `client_auth` methods in force: configured, or picked from what is configured. */
function clientAuthMethods(c: Pick<Fields, "client_auth" | "client_secret" | "tls_client_auth_cert">): ClientAuthMethod[] {
  return c.client_auth ?? [defaultClientAuth({ clientSecret: c.client_secret, tlsCertFile: c.tls_client_auth_cert })];
}

interface IssueSink {
  addIssue(issue: { code: "custom"; path: PropertyKey[]; message: string }): void;
}

/**
 * Adds the schema's issues for the gateway's client; `path` maps a key name to its place in the
 * config (flat in openid-connect, nested in upstream-oauth).
 */
export function checkGatewayClient(
  c: Pick<Fields, "client_auth" | "client_secret" | "tls_client_auth_cert" | "tls_client_auth_key"> & { readonly client_alg?: string },
  ctx: IssueSink,
  names: ClientAuthKeyNames = KONG_KEY_NAMES,
  path: (key: keyof ClientAuthKeyNames) => PropertyKey[] = (key) => [key],
): void {
  for (const issue of clientAuthIssues(
    {
      methods: clientAuthMethods(c),
      clientSecret: c.client_secret,
      tlsCertFile: c.tls_client_auth_cert,
      tlsKeyFile: c.tls_client_auth_key,
      alg: c.client_alg,
    },
    names,
  )) {
    ctx.addIssue({ code: "custom", path: path(issue.key), message: issue.message });
  }
}

/** `createGatewayClient`'s settings from the flat keys. */
export function gatewayClientSettings(
  c: Fields & { readonly client_id: string },
  timeout: number,
  extra: Partial<ClientAuthSettings> = {},
): ClientAuthSettings {
  return {
    clientId: c.client_id,
    clientSecret: c.client_secret,
    methods: clientAuthMethods(c),
    alg: c.client_alg,
    kid: c.client_jwk,
    tlsCertFile: c.tls_client_auth_cert,
    tlsKeyFile: c.tls_client_auth_key,
    tlsVerify: c.tls_client_auth_ssl_verify,
    assertionAudience: c.client_assertion_audience,
    endpoints: { mtls_token_endpoint: c.mtls_token_endpoint, mtls_introspection_endpoint: c.mtls_introspection_endpoint },
    timeout,
    ...extra,
  };
}
