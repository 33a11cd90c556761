/**
 * Kong's `openid-connect` plugin: authenticates callers with the methods of `auth_methods`
 * against one issuer, and proxies with the access token. The authenticators do the work; this
 * file picks them, asks them in order, and hands the verdict to the upstream request.
 */
import { AuthError, type Challenge } from "../../errors.ts";
import type { PluginHandler } from "../../gateway/context.ts";
import { forwardProxy } from "../../oidc/client/forward-proxy.ts";
import { issuerRegistry, splitIssuer } from "../../oidc/client/issuer.ts";
import { remoteJwks } from "../../oidc/client/remote-jwks.ts";
import { multiIssuerKeySource } from "../../oidc/resource/key-source.ts";
import { definePlugin } from "../types.ts";
import { issuersAdmin } from "./admin.ts";
import type { Authenticator, AuthenticatorFactory, Principal } from "./authn/authenticator.ts";
import { bearerAuthenticator } from "./authn/bearer.ts";
import { clientCredentialsAuthenticator } from "./authn/client-credentials.ts";
import { introspectionAuthenticator } from "./authn/introspection.ts";
import { passwordAuthenticator } from "./authn/password.ts";
import { openIdConnectSchema, type AuthMethod, type OpenIdConnectConfig } from "./schema.ts";
import { createCallerIdentity } from "./caller-identity.ts";
import { createConsumerMapping } from "./consumer-mapping.ts";
import { createRequirementCheck } from "./authz.ts";
import { createTokenExchange } from "./token-exchange.ts";
import { createUpstreamHeaders, upstreamHeaderNames } from "./mutate.ts";
import { base64url } from "../../lib/base64url.ts";
import { isLoopbackHost } from "../../lib/loopback.ts";

/** One factory per implemented `auth_methods` value. */
const AUTHENTICATORS: Record<AuthMethod, AuthenticatorFactory> = {
  client_credentials: clientCredentialsAuthenticator,
  bearer: bearerAuthenticator,
  password: passwordAuthenticator,
  introspection: introspectionAuthenticator,
};

function uniqueChallenges(authenticators: readonly Authenticator[]): Challenge[] {
  const seen = new Set<string>();
  const out: Challenge[] = [];
  for (const challenge of authenticators.flatMap((a) => a.challenges)) {
    if (seen.has(challenge.scheme)) continue;
    seen.add(challenge.scheme);
    out.push(challenge);
  }
  return out;
}

export const openIdConnect = definePlugin<OpenIdConnectConfig>({
  name: "openid-connect",
  priority: 1050, // Kong's
  secretKeys: ["cache_tokens_salt", "dpop_nonce_secret", "client_secret"],
  schema: openIdConnectSchema,
  // Kong's: an authentication plugin decides who the consumer is, so it cannot be scoped to one.
  consumerScoped: false,
  consumerReferences: (config) => (config.anonymous !== undefined ? [{ key: "anonymous", consumer: config.anonymous }] : []),

  warnings(config, gateway) {
    const warnings: string[] = [];
    const sharedReplay = gateway.cluster.strategy === "redis" && gateway.cluster.items.includes("dpop_replay");
    if (config.proof_of_possession_dpop !== "off" && gateway.server.workers > 1 && !sharedReplay) {
      warnings.push(
        `proof_of_possession_dpop: with [server] workers = ${gateway.server.workers}, each worker keeps its own DPoP replay records, so a proof replayed to another worker is accepted; share them with [cluster] strategy = "redis" and "dpop_replay" in items`,
      );
    }
    if (!config.ssl_verify) warnings.push("ssl_verify: the identity provider's certificate is not verified ('ssl_verify = false')");
    const url = new URL(splitIssuer(config.issuer).discoveryUrl);
    if (url.protocol === "http:" && !isLoopbackHost(url.hostname)) {
      warnings.push(`issuer: "${config.issuer}" is plain http; client secrets and tokens cross the network unencrypted`);
    }
    if ((config.auth_methods.includes("bearer") || config.auth_methods.includes("introspection")) && config.audience_required.length === 0) {
      warnings.push(
        "audience_required: bearer tokens are accepted whatever their audience; any token the issuer made for another API works here too",
      );
    }
    if (config.enable_hs_signatures) {
      warnings.push("enable_hs_signatures: HMAC-signed (HS256/384/512) tokens are accepted; anyone who knows the client secret can mint them");
    }
    if (config.cache_ttl_max !== undefined && config.cache_ttl_max > config.cache_ttl) {
      warnings.push(
        `cache_ttl_max: ${config.cache_ttl_max} s is above the token lifetime assumed by 'cache_ttl' (${config.cache_ttl} s); it only bounds tokens that carry their own expiry, which are never cached past it anyway`,
      );
    }
    return warnings;
  },

  async create(config, ctx) {
    const registry = issuerRegistry(ctx);
    const settings = {
      timeout: config.timeout,
      sslVerify: config.ssl_verify,
      rediscoveryLifetime: config.rediscovery_lifetime,
      proxy: forwardProxy(config, ctx.server),
    };
    const discoveryHeaders = config.discovery_headers_names.length
      ? Object.fromEntries(config.discovery_headers_names.map((n, i) => [n, config.discovery_headers_values[i]!]))
      : undefined;
    const issuer = await registry.acquire({ ...settings, issuer: config.issuer, jwksEndpoint: config.jwks_endpoint, discoveryHeaders });
    // Several issuers (Kong's issuers_allowed, extra_jwks_uris): each discovered and cached on its own.
    const allowed = await Promise.all(
      config.issuers_allowed.filter((i) => i !== config.issuer).map((i) => registry.acquire({ ...settings, issuer: i, discoveryHeaders })),
    );
    const extraKeys = config.extra_jwks_uris.map((uri) =>
      remoteJwks(uri, issuer.fetch, { timeout: config.timeout, cooldownSeconds: config.rediscovery_lifetime }),
    );
    const keys = allowed.length || extraKeys.length ? multiIssuerKeySource([issuer, ...allowed], extraKeys) : issuer;
    const authenticators = await Promise.all(
      config.auth_methods.map((method) => AUTHENTICATORS[method as AuthMethod]({ config, issuer, keys, ctx })),
    );
    const tokenExchange = await createTokenExchange(config, issuer, ctx);
    const challenges = uniqueChallenges(authenticators);
    const upstreamHeaders = createUpstreamHeaders(config);
    // Kong applies them whatever the method: bearer, introspection, client credentials, password.
    const requirements = createRequirementCheck(config);
    const identify = createCallerIdentity(config);
    const consumers = createConsumerMapping(config);
    const logIdentity = ctx.server.access_log;
    // Kong's `upstream_introspection_header`: rendered once per cached introspection result.
    const introspectionHeader = config.upstream_introspection_header?.toLowerCase();
    const introspectionValues = new WeakMap<object, string>();
    // Kong's `upstream_introspection_jwt_header`: the IdP's signed answer as it came (RFC 9701).
    const introspectionJwtHeader = config.upstream_introspection_jwt_header?.toLowerCase();

    const handler: PluginHandler = async (c, next) => {
      if (config.display_errors) c.set("displayErrors", true);
      c.set("unauthorizedMessage", config.unauthorized_error_message);
      // The caller's own identity headers (X-Consumer-*, X-Credential-Identifier, …) were dropped
      // by the core before any plugin ran (gateway/headers.ts): only the ones set here go upstream.
      let principal: Principal | undefined;
      try {
        for (const authenticator of authenticators) {
          principal = await authenticator.authenticate(c);
          if (principal) break;
        }
      } catch (error) {
        // `anonymous`: a caller whose credentials were refused (401) continues as that consumer.
        if (error instanceof AuthError && error.status === 401 && consumers.anonymous(c)) return next();
        throw error;
      }
      if (!principal) {
        if (consumers.anonymous(c)) return next();
        // RFC 6750 §3.1: a request without credentials gets the challenge without an error code.
        throw new AuthError({ challenges });
      }
      const claims = principal.grant.claims;
      const identity = identify(claims);
      if (logIdentity) {
        // Who called, for the access log: the client and the subject, never the token.
        if (identity.clientId !== undefined) c.var.logFields.client_id = identity.clientId;
        if (identity.sub !== undefined) c.var.logFields.sub = identity.sub;
      }
      const refusal = requirements?.(claims, principal.challenges) ?? consumers.authenticated(c, claims, principal.challenges);
      if (refusal) throw refusal;
      upstreamHeaders(c, tokenExchange ? await tokenExchange.exchange(principal.grant) : principal.grant);
      if (introspectionHeader !== undefined && principal.method === "introspection" && claims) {
        let value = introspectionValues.get(claims);
        if (value === undefined) {
          value = base64url(new TextEncoder().encode(JSON.stringify(claims)));
          introspectionValues.set(claims, value);
        }
        c.var.upstreamHeaders.set(introspectionHeader, value);
      }
      if (introspectionJwtHeader !== undefined && principal.method === "introspection" && principal.grant.jwt !== undefined) {
        c.var.upstreamHeaders.set(introspectionJwtHeader, principal.grant.jwt);
      }
      if (identity.groups) {
        c.set("authenticatedGroups", identity.groups);
        c.var.upstreamHeaders.set("x-authenticated-groups", identity.groupsHeader!);
      }
      await next();
    };

    return {
      handler,
      upstreamHeaderNames: [
        ...upstreamHeaderNames(config),
        "x-authenticated-groups",
        ...(introspectionHeader ? [introspectionHeader] : []),
        ...(introspectionJwtHeader ? [introspectionJwtHeader] : []),
      ],
      readiness() {
        if (issuer.peek()) return { ready: true };
        return { ready: false, reason: `issuer "${issuer.issuer}" is not discovered yet${issuer.view().error ? `: ${issuer.view().error}` : ""}` };
      },
      close() {
        for (const authenticator of authenticators) authenticator.close?.();
        tokenExchange?.close();
        registry.release(issuer);
        for (const other of allowed) registry.release(other);
      },
    };
  },

  admin: issuersAdmin,
});
