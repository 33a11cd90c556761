/**
 * The `openid-connect` plugin's config: Kong's key names and defaults (differences are said in
 * the key's description), checked once at start. `check` never needs the network.
 */
import { z } from "zod";
import { forwardProxyFields, kongTable, millis, seconds, type SchemaContext } from "../../config/fields.ts";
import { checkGatewayClient, gatewayClientFields } from "../../oidc/client/client-auth-schema.ts";
import { ASYMMETRIC_ALGORITHMS } from "../../lib/jwa.ts";
import { HOP_BY_HOP } from "../../lib/hop-by-hop.ts";
import { CLIENT_AUTH_METHODS, KONG_KEY_NAMES } from "../../oidc/client/client-auth.ts";
import { normalizeOrigin } from "../../oidc/resource/dpop.ts";

/** Every `auth_methods` value Kong knows. */
const KONG_AUTH_METHODS = [
  "password",
  "client_credentials",
  "authorization_code",
  "bearer",
  "introspection",
  "userinfo",
  "kong_oauth2",
  "refresh_token",
  "session",
] as const;
type KongAuthMethod = (typeof KONG_AUTH_METHODS)[number];

/** The methods this gateway implements; the others are refused at start until their issue lands. */
const IMPLEMENTED_AUTH_METHODS = ["client_credentials", "bearer", "password", "introspection"] as const satisfies readonly KongAuthMethod[];
export type AuthMethod = (typeof IMPLEMENTED_AUTH_METHODS)[number];

/**
 * The default `auth_methods`. Kong enables every method; we enable only the workflow users come
 * for. `bearer` accepts any token the issuer signed (for any API, unless `audience_required`
 * narrows it), so turning it on is a decision to make, not a default to inherit.
 */
const DEFAULT_AUTH_METHODS: readonly AuthMethod[] = ["client_credentials"];
/** The methods in which the gateway calls the IdP as its own client. */
const GATEWAY_CLIENT_METHODS: readonly KongAuthMethod[] = ["password", "introspection"];

const PARAM_TYPES = ["header", "query", "body"] as const;
export type ParamType = (typeof PARAM_TYPES)[number];

/** Kong's `proof_of_possession_dpop` / `proof_of_possession_mtls` values. */
const POP_MODES = ["off", "optional", "strict"] as const;

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Never passed from the caller to the IdP: its credentials, and what frames the IdP request. */
const CALLER_HEADERS_REFUSED: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP,
  "authorization",
  "cookie",
  "dpop",
  "host",
  "content-type",
  "content-length",
  "content-encoding",
  "accept",
]);

/** `authorization:bearer` → header `authorization`, value `Bearer <token>`; `x-token` → the bare token. */
export interface UpstreamTokenHeader {
  readonly name: string;
  readonly prefix: string;
}

const upstreamTokenHeader = () =>
  z.string().transform((value, ctx): UpstreamTokenHeader => {
    const [name = "", scheme, ...rest] = value.split(":").map((s) => s.trim());
    if (!HEADER_NAME.test(name) || rest.length || (scheme !== undefined && !/^[A-Za-z][A-Za-z0-9_-]*$/.test(scheme))) {
      ctx.addIssue({ code: "custom", message: `expected "header-name" or "header-name:scheme" (e.g. "authorization:bearer"), got "${value}"` });
      return z.NEVER;
    }
    const prefix = scheme === undefined ? "" : `${scheme.toLowerCase() === "bearer" ? "Bearer" : scheme} `;
    return { name: name.toLowerCase(), prefix };
  });

const url = () =>
  z
    .url({ protocol: /^https?$/, error: (issue) => (issue.input === undefined ? undefined : "expected an http:// or https:// URL") })
    .refine((u) => !u.includes("#"), "expected a URL without a fragment");

/** For callers that validate without a config file (paths are taken as written). */
const NO_FILE: SchemaContext = { resolvePath: (p) => p };

export const openIdConnectSchema = (ctx: SchemaContext = NO_FILE) =>
  kongTable("openid-connect", {
    issuer: url().describe("The issuer identifier, or the URL of its discovery document; the discovered `issuer` must equal it exactly."),
    issuers_allowed: z
      .array(url())
      .default([])
      .describe(
        "More issuers whose bearer tokens are accepted besides `issuer` (two realms, an IdP migration): each is discovered and its keys cached on its own; a token's `iss` picks its issuer's keys.",
      ),
    extra_jwks_uris: z
      .array(url())
      .default([])
      .describe(
        "JWKS URLs that are not an issuer's: their keys also verify bearer tokens (of `issuer` or `issuers_allowed`) when the issuer's keys do not match.",
      ),
    jwks_endpoint: url().optional().describe("The URL of `issuer`'s keys, instead of the discovered `jwks_uri`."),
    discovery_headers_names: z
      .array(z.string().regex(HEADER_NAME, "expected an HTTP header name"))
      .default([])
      .describe("Headers sent with the discovery request (names), position by position with `discovery_headers_values`."),
    discovery_headers_values: z.array(z.string()).default([]).describe("Values of `discovery_headers_names`."),
    auth_methods: z
      .array(z.enum(KONG_AUTH_METHODS))
      .min(1)
      .default([...DEFAULT_AUTH_METHODS])
      .describe(
        "Types of credentials accepted, asked in this order; this gateway implements `client_credentials`, `bearer`, `password` and `introspection` (the last two need `client_id`). A `Basic` header is client credentials when `client_credentials` reads headers, a `Bearer`/`DPoP` header a bearer token (an opaque one is introspected).",
      )
      .meta({ kong: "same name; Kong's default enables all its methods, ours only `client_credentials`" }),
    client_credentials_param_type: z
      .array(z.enum(PARAM_TYPES))
      .min(1)
      .default([...PARAM_TYPES])
      .describe(
        "Where callers' client credentials are looked for, in this order: `header` (Basic), `query`, `body` (form or JSON `client_id`/`client_secret`).",
      ),
    // `bearer` (see docs/proof-of-possession.md).
    bearer_token_param_type: z
      .array(z.enum([...PARAM_TYPES, "cookie"]))
      .min(1)
      .default(["header"])
      .describe(
        "Where callers' access tokens are looked for: `header` (`Authorization: Bearer`, or `DPoP` when `proof_of_possession_dpop` is on), `query`, `body` (form or JSON `access_token`) and `cookie` (`bearer_token_cookie_name`); a token sent in two places is 400 `invalid_request`.",
      )
      .meta({ kong: "same; Kong's default is all three, ours only `header`: tokens in URLs end up in logs (RFC 6750 §2.3, RFC 9700)" }),
    bearer_token_cookie_name: z
      .string()
      .regex(HEADER_NAME, "expected a cookie name")
      .optional()
      .describe(
        'The cookie `bearer_token_param_type` "cookie" reads the access token from (as a `Bearer` token); `hide_credentials` removes it from the upstream\'s `Cookie` header.',
      ),
    bearer_token_header_name: z
      .string()
      .regex(HEADER_NAME, "expected an HTTP header name")
      .optional()
      .describe(
        'The header `bearer_token_param_type` "header" reads the access token from instead of `Authorization` (which is then left alone, e.g. for another layer\'s credentials): `Bearer <token>`, `DPoP <token>` or the bare token; `hide_credentials` removes it from the upstream request. Unset: `Authorization`.',
      )
      .meta({ kong: "none: Kong's `header` reads `Authorization`" }),
    bearer_require_at_jwt: z
      .boolean()
      .default(false)
      .describe(
        "Require the RFC 9068 profile of bearer tokens: `typ` header `at+jwt` and the claims `exp`, `iat`, `sub`, `client_id`, `jti` (refuses ID tokens and other JWTs of the issuer).",
      )
      .meta({ kong: "" }),
    audience_required: z
      .array(z.string().min(1))
      .default([])
      .describe(
        "Audiences the access token must name in `audience_claim`, whatever the method (a token without claims fails): one entry suffices (OR), space-separated values in an entry are all needed (AND); otherwise 401 `invalid_token`. Empty: not checked.",
      )
      .meta({ kong: "same; Kong answers 403, this gateway 401 `invalid_token` (RFC 9068 §4)" }),
    audience_claim: z
      .array(z.string().min(1))
      .min(1)
      .default(["aud"])
      .describe("Path of the claim `audience_required` looks in (more entries: a nested claim)."),
    scopes_required: z
      .array(z.string().min(1))
      .default([])
      .describe(
        "Scopes the access token must have in `scopes_claim`, whatever the method (a token without claims fails): one entry suffices (OR), space-separated scopes in an entry are all needed (AND); otherwise 403 `insufficient_scope`. Empty: not checked.",
      ),
    scopes_claim: z
      .array(z.string().min(1))
      .min(1)
      .default(["scope"])
      .describe("Path of the claim `scopes_required` looks in (a space-separated string or an array; more entries: a nested claim)."),
    groups_required: z
      .array(z.string().min(1))
      .default([])
      .describe(
        "Groups the token must have in `groups_claim`, whatever the method: one entry suffices (OR), space-separated groups in an entry are all needed (AND); otherwise 403 `insufficient_scope` with `forbidden_error_message`. Empty: not checked.",
      ),
    groups_claim: z
      .array(z.string().min(1))
      .min(1)
      .default(["groups"])
      .describe(
        "Path of the claim `groups_required` looks in: an array of strings or one string (another type is refused, never converted); more entries: a nested claim.",
      ),
    roles_required: z
      .array(z.string().min(1))
      .default([])
      .describe("Roles the token must have in `roles_claim`, with the semantics of `groups_required`."),
    roles_claim: z
      .array(z.string().min(1))
      .min(1)
      .default(["roles"])
      .describe(
        'Path of the claim `roles_required` looks in: Keycloak\'s realm roles are `["realm_access", "roles"]`, a client\'s roles `["resource_access", "<client>", "roles"]`.',
      ),
    claims_forbidden: z
      .array(z.string().min(1))
      .default([])
      .describe("Top-level claims a token must not carry: a token with any of them gets 403 `insufficient_scope`."),
    authenticated_groups_claim: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe(
        "Path of the claim whose values (an array of strings or one string) become the caller's authenticated groups: sent upstream in `X-Authenticated-Groups` and read by the `acl` plugin. Unset: none.",
      ),
    consumer_claim: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe(
        'Path of the claim that names the caller\'s consumer (e.g. `["client_id"]` or `["azp"]`), matched against the `consumer_by` fields of `[[consumers]]`. Unset: no consumer mapping.',
      ),
    consumer_by: z
      .array(z.enum(["id", "username", "custom_id"]))
      .min(1)
      .default(["username", "custom_id"])
      .describe("Consumer fields the `consumer_claim` value is matched against, in this order."),
    consumer_optional: z
      .boolean()
      .default(false)
      .describe(
        "Let a valid token that maps to no consumer through (without a consumer); false: such a caller gets 403 with `forbidden_error_message`.",
      ),
    credential_claim: z
      .array(z.string().min(1))
      .min(1)
      .default(["sub"])
      .describe(
        'Path of the claim that identifies the credential: sent upstream in `X-Credential-Identifier`, and what `rate-limiting` counts by with `limit_by = "credential"`.',
      ),
    anonymous: z
      .string()
      .min(1)
      .optional()
      .describe(
        "A consumer (`username`, `custom_id` or `id`) a caller becomes when authentication fails (no credentials, or refused ones: a 401), so one route serves both; the upstream gets `X-Anonymous-Consumer: true`. Failures of the IdP stay 5xx.",
      ),
    forbidden_error_message: z
      .string()
      .default("Forbidden")
      .describe("The `message` of 403 responses (a failed `scopes_required`, `groups_required`, `roles_required` or `claims_forbidden`)."),
    proof_of_possession_dpop: z
      .enum(POP_MODES)
      .default("off")
      .describe(
        "DPoP (RFC 9449) for bearer tokens: `optional` checks the proof of DPoP-bound tokens, `strict` accepts only DPoP-bound tokens with a valid proof; a DPoP-bound token sent as `Bearer` is always refused.",
      )
      .meta({ kong: "same; with `off` Kong accepts a DPoP-bound token as a plain bearer token, this gateway refuses it (RFC 9449 §7.2)" }),
    proof_of_possession_mtls: z
      .enum(POP_MODES)
      .default("off")
      .describe(
        "Certificate-bound tokens (RFC 8705) on the mTLS listener: `optional` checks bound tokens against the client certificate, `strict` accepts only bound tokens with a matching certificate.",
      ),
    dpop_proof_lifetime: seconds()
      .min(1, "expected at least 1 second")
      .default(300)
      .describe("How long after its `iat` a DPoP proof is accepted (s); `leeway` is added for clock skew."),
    dpop_proof_clock_skew: seconds(300)
      .default(10)
      .describe(
        "How many seconds a DPoP proof's `iat` may be ahead of the gateway's clock (callers' clocks run ahead); the larger of this and `leeway` applies (docs/security.md).",
      ),
    dpop_use_nonce: z
      .boolean()
      .default(false)
      .describe("Require a server nonce in DPoP proofs: a proof without a current one gets 401 `use_dpop_nonce` and a fresh `DPoP-Nonce`."),
    dpop_nonce_secret: z
      .string()
      .min(32, "expected at least 32 characters")
      .optional()
      .describe(
        "Secret the DPoP nonces are derived from: every gateway process serving the same clients (behind one load balancer, or several workers) must share it. Unset: random per process.",
      )
      .meta({ kong: "" }),
    dpop_public_origins: z
      .array(
        z.string().refine((o) => {
          try {
            normalizeOrigin(o);
            return true;
          } catch {
            return false;
          }
        }, 'expected an origin such as "https://api.example.com" (scheme, host, optional port; no path)'),
      )
      .default([])
      .describe(
        "Origins callers reach the gateway by (`https://api.example.com`), accepted as a DPoP proof's `htu` besides localhost, 127.0.0.1 and [::1] at the listener's port; set it behind a load balancer or on a public name.",
      )
      .meta({ kong: "" }),
    dpop_replay_cache_max: z
      .int()
      .min(1)
      .max(10_000_000)
      .default(200_000)
      .describe("Most DPoP proof `jti`s remembered against replay (per process); when full, the oldest go and proofs no newer than them are refused.")
      .meta({ kong: "" }),
    token_endpoint_auth_method: z
      .enum(["client_secret_basic", "client_secret_post"])
      .default("client_secret_basic")
      .describe("How the caller's client credentials are presented to the IdP's token endpoint.")
      .meta({ kong: "Kong picks from `client_auth`" }),
    scopes: z
      .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, "expected a scope token (RFC 6749 §3.3)"))
      .default([])
      .describe("Scopes requested with the token; none by default, so no `scope` is sent (`openid` makes some IdPs refuse client credentials).")
      .meta({ kong: 'same; Kong\'s default is `["openid"]`' }),
    audience: z.array(z.string().min(1)).default([]).describe("`audience` values sent with the token request; none by default."),
    token_endpoint: url()
      .optional()
      .describe(
        "Token endpoint of `client_credentials` and `password` (and token exchange without `token_exchange_endpoint`); unset: the discovered `token_endpoint`.",
      ),
    token_headers_names: z
      .array(z.string().regex(HEADER_NAME, "expected an HTTP header name"))
      .default([])
      .describe(
        "Headers sent with the token requests of `client_credentials`, `password` and token exchange (names), position by position with `token_headers_values`; the client authentication's own `Authorization` wins.",
      )
      .meta({ kong: "same; Kong's own (proprietary) token exchange sends none" }),
    token_headers_values: z.array(z.string()).default([]).describe("Values of `token_headers_names`."),
    token_post_args_names: z
      .array(z.string().min(1))
      .default([])
      .describe(
        "Form parameters added to the token requests of `client_credentials`, `password` and token exchange (names), position by position with `token_post_args_values`; the grant's own parameters (`grant_type`, `scope`, `audience`, `resource`, `subject_token`, credentials) win.",
      )
      .meta({ kong: "same; Kong's own (proprietary) token exchange sends none" }),
    token_post_args_values: z.array(z.string()).default([]).describe("Values of `token_post_args_names`."),
    // The gateway's own client (`password`, `introspection`; see docs/identity.md).
    ...gatewayClientFields(ctx),
    password_param_type: z
      .array(z.enum(PARAM_TYPES))
      .min(1)
      .default([...PARAM_TYPES])
      .describe(
        "Where callers' `username`/`password` are looked for: `header` (Basic), `query`, `body` (form or JSON). A Basic header goes to `client_credentials` instead when that method is on and reads headers.",
      )
      .meta({ kong: "same; Kong gives a Basic header to `password` first" }),
    introspection_endpoint: url().optional().describe("Introspection endpoint (RFC 7662); unset: the discovered `introspection_endpoint`."),
    introspection_hint: z.string().default("access_token").describe("`token_type_hint` sent with introspection requests; empty: none."),
    introspection_headers_names: z
      .array(z.string().regex(HEADER_NAME, "expected an HTTP header name"))
      .default([])
      .describe(
        "Headers sent with introspection requests (names), position by position with `introspection_headers_values`; the client authentication's own `Authorization` wins.",
      ),
    introspection_headers_values: z.array(z.string()).default([]).describe("Values of `introspection_headers_names`."),
    introspection_headers_client: z
      .array(
        z
          .string()
          .regex(HEADER_NAME, "expected an HTTP header name")
          .refine((name) => !CALLER_HEADERS_REFUSED.has(name.toLowerCase()), {
            message: "is the caller's credentials or the request's framing, never passed to the IdP",
          }),
      )
      .default([])
      .describe(
        "Headers of the caller's request passed on to the introspection endpoint when present (e.g. a tenant hint); their values are part of the cache key. `introspection_headers_names` win over them. Credentials and framing headers (`Authorization`, `Cookie`, `DPoP`, `Host`, `Content-*`, hop-by-hop) are refused.",
      )
      .meta({ kong: "same, but Kong lets the caller's header replace a configured one; here the configured one wins" }),
    introspection_post_args_names: z
      .array(z.string().min(1))
      .default([])
      .describe(
        "Form parameters added to introspection requests (names), position by position with `introspection_post_args_values`; `token`, `token_type_hint` and the client authentication's own parameters win.",
      ),
    introspection_post_args_values: z.array(z.string()).default([]).describe("Values of `introspection_post_args_names`."),
    introspection_endpoint_auth_method: z
      .enum(CLIENT_AUTH_METHODS)
      .optional()
      .describe(
        "How the gateway authenticates as `client_id` to the introspection endpoint only (a method of `client_auth`'s list); unset: as `client_auth` says.",
      ),
    introspection_check_active: z
      .boolean()
      .default(true)
      .describe(
        "Refuse a token whose introspection answers `active: false` (401 `invalid_token`); false: accept it as Kong does (the IdP's answer is then only claims, so only for IdPs that answer `active: false` for tokens they still want accepted).",
      ),
    introspection_accept: z
      .enum(["application/json", "application/token-introspection+jwt", "application/jwt"])
      .default("application/json")
      .refine((v) => v !== "application/jwt", {
        message:
          'the obsolete draft\'s "application/jwt" answer (claims mixed with the JWT\'s own) is not implemented: use "application/token-introspection+jwt" (RFC 9701)',
      })
      .describe(
        "`Accept` of introspection requests: `application/json`, or `application/token-introspection+jwt` (RFC 9701): the IdP signs its answer, which is used only once its signature (the issuer's keys), `typ`, `iss`, `aud` (= `client_id`) and `iat` are verified; an answer that is not such a JWT or does not verify is the IdP's failure (502, logged), never the caller's 401.",
      )
      .meta({ kong: "same; `application/jwt` (an obsolete draft) is refused with its reason" }),
    introspect_jwt_tokens: z
      .boolean()
      .default(false)
      .describe("Introspect JWT access tokens too (sees revocations); off, JWTs are left to `bearer` when it is enabled."),
    token_exchange_endpoint: url()
      .optional()
      .describe(
        "RFC 8693 token exchange: after authentication, the caller's access token is exchanged at this endpoint for one meant for the upstream (the gateway authenticates with its own `client_id`/`client_auth`). Unset while another `token_exchange_*` key is set: `token_endpoint`, else the discovered token endpoint.",
      ),
    token_exchange_resource: z.string().min(1).optional().describe("`resource` of the token exchange request (RFC 8707: the upstream's URI)."),
    token_exchange_audience: z.array(z.string().min(1)).default([]).describe("`audience` values of the token exchange request."),
    token_exchange_scopes: z.array(z.string().min(1)).default([]).describe("`scope` of the token exchange request."),
    cache_token_exchange: z
      .boolean()
      .default(true)
      .describe("Cache exchanged tokens under a keyed hash of the caller's token, never past the smaller of the two tokens' lifetimes."),
    cache_introspection: z
      .boolean()
      .default(true)
      .describe(
        "Cache introspection results, keyed by a salted hash of the token, never past the token's `exp` (a revoked token is accepted until its entry expires: bound it with `cache_ttl_max`).",
      ),
    timeout: millis()
      .min(1, "expected at least 1 ms")
      .default(10_000)
      .describe("Timeout of each call to the IdP: discovery, JWKS and token endpoint (ms)."),
    ssl_verify: z
      .boolean()
      .default(true)
      .describe("Verify the IdP's TLS certificate (against the system roots and `[server] trusted_certificates`)."),
    ...forwardProxyFields(),
    rediscovery_lifetime: seconds()
      .min(1, "expected at least 1 second: it is what bounds refetches for unknown kids")
      .default(30)
      .describe(
        "Minimum time between two fetches of the discovery document and JWKS: the background refresh and the refetch for an unknown `kid` (s).",
      ),
    leeway: seconds(3600)
      .default(0)
      .describe(
        "Clock skew tolerated when checking `exp`, `nbf` and `iat` of tokens and DPoP proofs (s); an `iat` up to 5 s in the future is always tolerated.",
      ),
    enable_hs_signatures: z
      .boolean()
      .default(false)
      .describe(
        "Also accept HMAC-signed (`HS256`/`HS384`/`HS512`) tokens, verified with the client secret; off, only asymmetric algorithms are accepted.",
      ),
    cache_tokens: z.boolean().default(true).describe("Cache token endpoint responses, keyed by a salted hash of the credentials and request."),
    cache_ttl: seconds().default(3600).describe("Cache lifetime of a token whose response has no `expires_in` and which has no `exp` (s)."),
    cache_ttl_max: seconds().optional().describe("Upper bound of a cached token's lifetime (s); unset: no bound."),
    cache_ttl_min: seconds().optional().describe("Lower bound of a cached token's lifetime (s), never past the token's own expiry; unset: no bound."),
    cache_ttl_neg: seconds()
      .default(10)
      .describe("How long credentials the IdP refused are answered from the cache (s), so a wrong secret cannot flood the IdP; 0 disables."),
    cache_ttl_resurrect: seconds()
      .optional()
      .describe("While the IdP fails, how long past its cache lifetime a still-valid token is served (s); unset: never."),
    cache_tokens_salt: z
      .string()
      .min(16, "expected at least 16 characters")
      .optional()
      .describe("Secret salt of the cache keys; unset: a random salt per process."),
    cache_tokens_max: z
      .int()
      .min(1)
      .max(10_000_000)
      .default(100_000)
      .describe("Most tokens kept in the cache; the least recently used go first.")
      .meta({ kong: "none: Kong's node cache is bounded by memory" }),
    upstream_access_token_header: upstreamTokenHeader()
      .prefault("authorization:bearer")
      .describe('Header that carries the access token to the upstream: "name" or "name:scheme".'),
    hide_credentials: z
      .boolean()
      .default(true)
      .describe("Remove the caller's credentials (header, query or body parameters) before proxying.")
      .meta({ kong: "same; Kong's default is `false`" }),
    upstream_introspection_header: z
      .string()
      .regex(HEADER_NAME, "expected an HTTP header name")
      .optional()
      .describe(
        "Header that carries the introspection response (base64url-encoded JSON) to the upstream when `introspection` authenticated the caller; a caller's own header of that name never reaches the upstream. Unset: none.",
      ),
    upstream_introspection_jwt_header: z
      .string()
      .regex(HEADER_NAME, "expected an HTTP header name")
      .optional()
      .describe(
        "Header that carries the IdP's signed introspection answer (the JWT as it came, `introspection_accept = \"application/token-introspection+jwt\"`) to the upstream when `introspection` authenticated the caller, so the upstream can verify it itself; a caller's own header of that name never reaches the upstream. Unset: none.",
      )
      .meta({ kong: "same; refused without `introspection_accept` asking for a JWT (Kong then silently sends nothing)" }),
    upstream_headers_claims: z
      .array(z.string().min(1))
      .default([])
      .describe(
        "Claims of the access token to copy into upstream headers: a top-level claim, or a nested one by a dotted path (`realm_access.roles`, when no top-level claim has that name); lists are comma-joined, objects sent as JSON.",
      )
      .meta({ kong: "same; Kong reads top-level claims only" }),
    upstream_headers_names: z
      .array(z.string().regex(HEADER_NAME, "expected an HTTP header name"))
      .default([])
      .describe(
        "Header names for `upstream_headers_claims`, position by position; a caller's own headers of these names (and of `upstream_access_token_header`) never reach the upstream, also when the claim is missing.",
      ),
    unauthorized_error_message: z.string().default("Unauthorized").describe("The `message` of 401 responses."),
    display_errors: z
      .boolean()
      .default(false)
      .describe("Add the error and its description to error responses (for debugging; it tells callers why they failed)."),
  }).superRefine((c, ctx) => {
    c.auth_methods.forEach((m, i) => {
      if (!(IMPLEMENTED_AUTH_METHODS as readonly string[]).includes(m)) {
        ctx.addIssue({
          code: "custom",
          path: ["auth_methods", i],
          message: `"${m}" is not supported yet; supported: ${IMPLEMENTED_AUTH_METHODS.map((s) => `"${s}"`).join(", ")}`,
        });
      }
    });
    if (c.discovery_headers_names.length !== c.discovery_headers_values.length) {
      ctx.addIssue({
        code: "custom",
        path: ["discovery_headers_values"],
        message: `expected as many entries as 'discovery_headers_names' (${c.discovery_headers_names.length}), got ${c.discovery_headers_values.length}`,
      });
    }
    for (const [names, values] of [
      ["introspection_headers_names", "introspection_headers_values"],
      ["introspection_post_args_names", "introspection_post_args_values"],
      ["token_headers_names", "token_headers_values"],
      ["token_post_args_names", "token_post_args_values"],
    ] as const) {
      if (c[names].length !== c[values].length) {
        ctx.addIssue({
          code: "custom",
          path: [values],
          message: `expected as many entries as '${names}' (${c[names].length}), got ${c[values].length}`,
        });
      }
    }
    if (c.bearer_token_param_type.includes("cookie") && c.bearer_token_cookie_name === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["bearer_token_cookie_name"],
        message: "missing required key: 'bearer_token_param_type' \"cookie\" needs 'bearer_token_cookie_name'",
      });
    }
    if (c.bearer_token_header_name !== undefined && !c.bearer_token_param_type.includes("header")) {
      ctx.addIssue({
        code: "custom",
        path: ["bearer_token_header_name"],
        message: "is read only when 'bearer_token_param_type' includes \"header\"",
      });
    }
    if (c.upstream_headers_claims.length !== c.upstream_headers_names.length) {
      ctx.addIssue({
        code: "custom",
        path: ["upstream_headers_names"],
        message: `expected as many entries as 'upstream_headers_claims' (${c.upstream_headers_claims.length}), got ${c.upstream_headers_names.length}`,
      });
    }
    if (c.cache_ttl_min !== undefined && c.cache_ttl_max !== undefined && c.cache_ttl_min > c.cache_ttl_max) {
      ctx.addIssue({ code: "custom", path: ["cache_ttl_min"], message: "expected 'cache_ttl_min' not above 'cache_ttl_max'" });
    }
    const needsClient = c.auth_methods.find((m) => GATEWAY_CLIENT_METHODS.includes(m));
    if (needsClient && c.client_id === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["client_id"],
        message: `missing required key: 'auth_methods' "${needsClient}" needs the gateway's own 'client_id'`,
      });
    }
    const exchanges =
      c.token_exchange_endpoint !== undefined ||
      c.token_exchange_resource !== undefined ||
      c.token_exchange_audience.length > 0 ||
      c.token_exchange_scopes.length > 0;
    if (exchanges && c.client_id === undefined) {
      ctx.addIssue({ code: "custom", path: ["client_id"], message: "missing required key: token exchange needs the gateway's own 'client_id'" });
    }
    if (needsClient || c.client_id !== undefined) checkGatewayClient(c, ctx);
    if (c.upstream_introspection_jwt_header !== undefined && c.introspection_accept !== "application/token-introspection+jwt") {
      ctx.addIssue({
        code: "custom",
        path: ["upstream_introspection_jwt_header"],
        message: `needs introspection_accept = "application/token-introspection+jwt": with JSON answers there is no JWT to send`,
      });
    }
    if (c.introspection_endpoint_auth_method !== undefined) {
      const names = { ...KONG_KEY_NAMES, client_auth: "introspection_endpoint_auth_method" };
      checkGatewayClient({ ...c, client_auth: [c.introspection_endpoint_auth_method] }, ctx, names);
    }
  });

export type OpenIdConnectConfig = z.output<ReturnType<typeof openIdConnectSchema>>;

/** Kong's `*_names`/`*_values` pairs as one record; undefined when empty. */
export const namedValues = (names: readonly string[], values: readonly string[]): Record<string, string> | undefined =>
  names.length ? Object.fromEntries(names.map((name, i) => [name, values[i] ?? ""])) : undefined;

/** The algorithms a token may be signed with under `config`. */
export function allowedAlgorithms(config: Pick<OpenIdConnectConfig, "enable_hs_signatures">): string[] {
  return config.enable_hs_signatures ? [...ASYMMETRIC_ALGORITHMS, "HS256", "HS384", "HS512"] : [...ASYMMETRIC_ALGORITHMS];
}
