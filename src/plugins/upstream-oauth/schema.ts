/**
 * The `upstream-oauth` plugin's config: Kong's tables and names (`oauth`, `client`, `cache`,
 * `behavior`), with the gateway's client authentication methods (`private_key_jwt`, mutual TLS)
 * added to `client`, and `oauth.issuer` for discovery. `check` never needs the network.
 */
import { z } from "zod";
import { filePath, forwardProxyFields, millis, seconds, table, type SchemaContext } from "../../config/fields.ts";
import { SIGNING_ALGORITHMS } from "../../keys/jwk.ts";
import { CLIENT_AUTH_METHODS, clientAuthIssues, defaultClientAuth, type ClientAuthKeyNames } from "../../oidc/client/client-auth.ts";

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const SCOPE = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

const httpUrl = () =>
  z
    .url({ protocol: /^https?$/, error: (issue) => (issue.input === undefined ? undefined : "expected an http:// or https:// URL") })
    .refine((u) => !u.includes("#"), "expected a URL without a fragment");

/** Where each client key lives in this plugin's config, for messages and issue paths. */
export const KEY_NAMES: ClientAuthKeyNames = {
  client_id: "oauth.client_id",
  client_secret: "oauth.client_secret",
  client_auth: "client.auth_method",
  client_alg: "client.client_alg",
  client_jwk: "client.client_jwk",
  tls_client_auth_cert: "client.tls_client_auth_cert",
  tls_client_auth_key: "client.tls_client_auth_key",
};

const oauthTable = () =>
  table({
    issuer: httpUrl()
      .optional()
      .describe(
        "The issuer identifier (or its discovery URL): the token endpoint, its mTLS alias and the `aud` of assertions come from discovery. One of `issuer` and `token_endpoint` is needed.",
      )
      .meta({ kong: "" }),
    token_endpoint: httpUrl()
      .optional()
      .describe("The token endpoint URL; overrides the discovered one. Without `issuer`, `private_key_jwt` assertions are addressed to it."),
    grant_type: z.enum(["client_credentials", "password"]).default("client_credentials").describe("The grant the gateway uses to get its token."),
    client_id: z.string().min(1).describe("The gateway's client id at the IdP."),
    client_secret: z
      .string()
      .min(1)
      .optional()
      .describe("The secret of `client_id`, for `client_secret_basic`, `client_secret_post` and `client_secret_jwt`."),
    username: z.string().min(1).optional().describe("The user of the `password` grant."),
    password: z.string().min(1).optional().describe("The password of `username`."),
    scopes: z
      .array(z.string().regex(SCOPE, "expected a scope token (RFC 6749 §3.3)"))
      .default([])
      .describe("Scopes requested; none by default, so no `scope` is sent.")
      .meta({ kong: 'same; Kong\'s default is `["openid"]`' }),
    audience: z.array(z.string().min(1)).default([]).describe("`audience` values sent with the token request."),
    token_headers: z
      .record(z.string().regex(HEADER_NAME, "expected an HTTP header name"), z.string())
      .default({})
      .describe("Extra headers of the token request."),
    token_post_args: z
      .record(z.string().min(1), z.string())
      .default({})
      .describe("Extra form parameters of the token request (they never replace the grant's own)."),
  });

const clientTable = (ctx: SchemaContext) =>
  table({
    auth_method: z
      .enum(CLIENT_AUTH_METHODS)
      .optional()
      .describe(
        "How the gateway authenticates to the token endpoint: `client_secret_basic`, `client_secret_post`, `client_secret_jwt`, `private_key_jwt`, `tls_client_auth`, `self_signed_tls_client_auth` or `none`. Unset: `client_secret_post` with a secret, else `tls_client_auth` with a certificate, else `private_key_jwt`.",
      )
      .meta({ kong: "same, with the gateway's methods added (`private_key_jwt`, the mutual TLS ones)" }),
    client_secret_jwt_alg: z
      .enum(["HS256", "HS512"])
      .default("HS512")
      .describe("Algorithm of `client_secret_jwt` assertions (MACed with `oauth.client_secret`)."),
    client_alg: z
      .enum(SIGNING_ALGORITHMS)
      .default("RS256")
      .describe("Algorithm of `private_key_jwt` assertions (a key of `[keys] jwks_file`).")
      .meta({ kong: "" }),
    client_jwk: z
      .string()
      .min(1)
      .optional()
      .describe("The `kid` of the `[keys] jwks_file` key that signs assertions; unset: the current key for `client_alg`.")
      .meta({ kong: "" }),
    client_assertion_audience: z
      .enum(["issuer", "token_endpoint"])
      .default("issuer")
      .describe("`aud` of `private_key_jwt` assertions: the issuer identifier, or the token endpoint URL.")
      .meta({ kong: "" }),
    tls_client_auth_cert: filePath(ctx)
      .optional()
      .describe("PEM client certificate for `tls_client_auth` / `self_signed_tls_client_auth`.")
      .meta({ kong: "" }),
    tls_client_auth_key: filePath(ctx).optional().describe("PEM private key of `tls_client_auth_cert`.").meta({ kong: "" }),
    mtls_token_endpoint: httpUrl()
      .optional()
      .describe("Token endpoint for the mutual TLS methods; unset: the discovered `mtls_endpoint_aliases`, else the token endpoint.")
      .meta({ kong: "" }),
    ssl_verify: z
      .boolean()
      .default(true)
      .describe("Verify the IdP's TLS certificate (against the system roots and `[server] trusted_certificates`)."),
    timeout: millis().min(1, "expected at least 1 ms").default(10_000).describe("Timeout of each call to the IdP (ms)."),
    ...forwardProxyFields(),
  });

const cacheTable = () =>
  table({
    default_ttl: seconds().min(1).default(3600).describe("Lifetime of a token whose response has no `expires_in` (s)."),
    eagerly_expire: seconds()
      .default(5)
      .describe("The token is taken as expired this long before `expires_in` says (s); it is refreshed in the background before that."),
  });

const behaviorTable = () =>
  table({
    upstream_access_token_header_name: z
      .string()
      .regex(HEADER_NAME, "expected an HTTP header name")
      .default("Authorization")
      .describe("Header that carries `Bearer <token>` to the upstream (replacing the caller's)."),
    purge_token_on_upstream_status_codes: z
      .array(z.int().min(100).max(599))
      .default([401])
      .describe("Upstream statuses after which the token is dropped, so the next request gets a new one; empty: never."),
  });

export const upstreamOauthSchema = (ctx: SchemaContext) =>
  table({
    oauth: oauthTable().describe("The token request."),
    client: clientTable(ctx).prefault({}).describe("How the gateway calls the IdP."),
    cache: cacheTable().prefault({}).describe("The token cache (one token per plugin instance)."),
    behavior: behaviorTable().prefault({}).describe("What the upstream receives."),
  })
    .superRefine((c, issues) => {
      if (c.oauth.issuer === undefined && c.oauth.token_endpoint === undefined) {
        issues.addIssue({
          code: "custom",
          path: ["oauth", "token_endpoint"],
          message: "missing required key: expected 'oauth.token_endpoint' or 'oauth.issuer'",
        });
      }
      if (c.oauth.grant_type === "password") {
        for (const key of ["username", "password"] as const) {
          if (c.oauth[key] === undefined)
            issues.addIssue({
              code: "custom",
              path: ["oauth", key],
              message: `missing required key: 'oauth.grant_type' "password" needs 'oauth.${key}'`,
            });
        }
      }
      for (const issue of clientAuthIssues(
        {
          methods: [authMethod(c)],
          clientSecret: c.oauth.client_secret,
          tlsCertFile: c.client.tls_client_auth_cert,
          tlsKeyFile: c.client.tls_client_auth_key,
        },
        KEY_NAMES,
      )) {
        issues.addIssue({ code: "custom", path: KEY_NAMES[issue.key].split("."), message: issue.message });
      }
    })
    .describe(
      "The gateway gets a token for itself and sends it to the upstream. It authenticates no caller: combine it with an authentication plugin, or keep the route on a private listener (docs/identity.md).",
    );

export type UpstreamOauthConfig = z.output<ReturnType<typeof upstreamOauthSchema>>;

/** `client.auth_method`, or Kong's default (`client_secret_post`) when there is a secret. */
export function authMethod(c: Pick<UpstreamOauthConfig, "oauth" | "client">) {
  if (c.client.auth_method) return c.client.auth_method;
  const picked = defaultClientAuth({ clientSecret: c.oauth.client_secret, tlsCertFile: c.client.tls_client_auth_cert });
  return picked === "client_secret_basic" ? "client_secret_post" : picked;
}
