/**
 * Kong's `upstream-oauth` plugin: the gateway gets a token for itself (client credentials, or a
 * configured user's password grant) with any of its client authentication methods, caches it,
 * refreshes it in the background before it expires, and sends it to the upstream as
 * `Bearer <token>` in `behavior.upstream_access_token_header_name`.
 *
 * It authenticates nobody: every request that reaches it is sent with the gateway's token. Put an
 * authentication plugin in front of it (openid-connect runs first, priority 1050 > 760) or keep
 * the route on a private listener (docs/identity.md).
 */
import type { AuthorizationServer } from "oauth4webapi";
import { AuthError, IdpError } from "../../errors.ts";
import type { PluginHandler } from "../../gateway/context.ts";
import { createGatewayClient } from "../../oidc/client/client-auth.ts";
import { requestGrant, type GatewayGrant } from "../../oidc/client/client-requests.ts";
import { issuerRegistry, splitIssuer, type Issuer } from "../../oidc/client/issuer.ts";
import { forwardProxy } from "../../oidc/client/forward-proxy.ts";
import { createIdpFetch } from "../../oidc/client/outbound.ts";
import { TokenCache, type Fresh } from "../../oidc/client/token-cache.ts";
import { CACHE_EVENT, meterCacheSize } from "../../oidc/client/token-cache-metrics.ts";
import { definePlugin } from "../types.ts";
import { authMethod, KEY_NAMES, upstreamOauthSchema, type UpstreamOauthConfig } from "./schema.ts";
import { isLoopbackHost } from "../../lib/loopback.ts";
import { timedIdpCall } from "../../oidc/client/timed-call.ts";

const CACHE_LABEL = "upstream_oauth";
/** One token per plugin instance. */
const KEY = "token";
/** While the IdP refuses the gateway's client, it is asked again at most this often (s). */
const REFUSAL_BACKOFF = 5;
/** Issuer metadata is refreshed this often, as openid-connect's default `rediscovery_lifetime` (s). */
const REDISCOVERY_LIFETIME = 30;
export const upstreamOauth = definePlugin<UpstreamOauthConfig>({
  name: "upstream-oauth",
  priority: 760, // after authentication plugins (openid-connect: 1050)
  secretKeys: ["client_secret", "password"],
  schema: upstreamOauthSchema,

  warnings(config) {
    const warnings: string[] = [];
    if (!config.client.ssl_verify) warnings.push("client.ssl_verify: the identity provider's certificate is not verified ('ssl_verify = false')");
    const endpoint = config.oauth.token_endpoint ?? splitIssuer(config.oauth.issuer!).discoveryUrl;
    const url = new URL(endpoint);
    if (url.protocol === "http:" && !isLoopbackHost(url.hostname)) {
      warnings.push(`oauth: "${endpoint}" is plain http; the gateway's credentials and tokens cross the network unencrypted`);
    }
    return warnings;
  },

  async create(config, ctx) {
    const { oauth, client: clientConfig, cache: cacheConfig, behavior } = config;
    const log = ctx.log;
    const metrics = ctx.metrics;
    const registry = oauth.issuer ? issuerRegistry(ctx) : undefined;
    const proxy = forwardProxy(clientConfig, ctx.server);
    const issuer: Issuer | undefined = registry
      ? await registry.acquire({
          issuer: oauth.issuer!,
          timeout: clientConfig.timeout,
          sslVerify: clientConfig.ssl_verify,
          rediscoveryLifetime: REDISCOVERY_LIFETIME,
          proxy,
        })
      : undefined;
    try {
      const fetch = issuer?.fetch ?? createIdpFetch(ctx, { timeout: clientConfig.timeout, sslVerify: clientConfig.ssl_verify, proxy });
      const client = await createGatewayClient(
        {
          clientId: oauth.client_id,
          clientSecret: oauth.client_secret,
          methods: [authMethod(config)],
          alg: authMethod(config) === "client_secret_jwt" ? clientConfig.client_secret_jwt_alg : clientConfig.client_alg,
          kid: clientConfig.client_jwk,
          tlsCertFile: clientConfig.tls_client_auth_cert,
          tlsKeyFile: clientConfig.tls_client_auth_key,
          tlsVerify: clientConfig.ssl_verify,
          // Without discovery there is no issuer identifier to address an assertion to.
          assertionAudience: issuer ? clientConfig.client_assertion_audience : "token_endpoint",
          endpoints: { token_endpoint: oauth.token_endpoint, mtls_token_endpoint: clientConfig.mtls_token_endpoint },
          timeout: clientConfig.timeout,
          keyNames: KEY_NAMES,
        },
        { ctx, fetch, where: 'plugin "upstream-oauth"', proxy },
      );
      // Without `issuer`, the token endpoint stands in for the metadata oauth4webapi wants.
      const fixed: AuthorizationServer | undefined = issuer ? undefined : { issuer: oauth.token_endpoint!, token_endpoint: oauth.token_endpoint! };
      const allowHttp = issuer ? issuer.allowHttp : oauth.token_endpoint!.startsWith("http:");
      const grant: GatewayGrant =
        oauth.grant_type === "password" ? { type: "password", username: oauth.username!, password: oauth.password! } : { type: "client_credentials" };
      const headerName = behavior.upstream_access_token_header_name.toLowerCase();
      const purgeOn = new Set(behavior.purge_token_on_upstream_status_codes);

      const cache = new TokenCache<string>(
        { ttl: cacheConfig.default_ttl, ttlNeg: REFUSAL_BACKOFF, maxEntries: 1 },
        {
          // The IdP refusing the gateway's own client: remembered briefly, so a bad secret does not flood it.
          isRejection: (error) => error instanceof IdpError && error.failure === "misconfigured",
          onRefreshError: (error) => {
            if (error instanceof IdpError)
              log.warn("upstream_oauth.token_refresh_failed", { client_id: oauth.client_id, code: error.code, detail: error.detail });
          },
        },
      );
      const closeCache = meterCacheSize(ctx, CACHE_LABEL, cache);

      const fetchToken = async (as: AuthorizationServer): Promise<Fresh<string>> => {
        const response = await timedIdpCall(metrics, "token", async () => {
          try {
            return await requestGrant(client.call(as, "token_endpoint"), grant, {
              scopes: oauth.scopes,
              audience: oauth.audience,
              parameters: oauth.token_post_args,
              headers: oauth.token_headers,
              allowHttp,
              timeout: clientConfig.timeout,
            });
          } catch (error) {
            // A refused `oauth.password` is the configuration's fault, not the caller's.
            if (error instanceof AuthError)
              throw new IdpError(
                "misconfigured",
                `the token endpoint refused 'oauth.username'/'oauth.password' of the gateway's client "${oauth.client_id}"`,
              );
            throw error;
          }
        });
        const lifetime = typeof response.expires_in === "number" ? Math.max(0, response.expires_in - cacheConfig.eagerly_expire) : undefined;
        log.debug("upstream_oauth.token_fetched", { client_id: oauth.client_id, method: client.methods[0], expires_in: response.expires_in ?? null });
        return { value: `Bearer ${response.access_token}`, expiresAt: lifetime === undefined ? undefined : Date.now() + lifetime * 1000 };
      };

      const handler: PluginHandler = async (c, next) => {
        const as = fixed ?? (issuer!.peek() ?? (await issuer!.metadata())).discovery;
        const result = await cache.get(KEY, () => fetchToken(as));
        metrics?.tokenCache(CACHE_LABEL, CACHE_EVENT[result.state]);
        c.var.logFields.upstream_token = result.state;
        if (result.state === "negative") throw result.error;
        c.var.upstreamHeaders.set(headerName, result.value);
        await next();
        if (purgeOn.has(c.res.status)) cache.delete(KEY);
      };

      return {
        handler,
        upstreamHeaderNames: [headerName],
        readiness() {
          if (!issuer || issuer.peek()) return { ready: true };
          return { ready: false, reason: `issuer "${issuer.issuer}" is not discovered yet` };
        },
        close() {
          closeCache();
          if (issuer) registry!.release(issuer);
        },
      };
    } catch (error) {
      if (issuer) registry!.release(issuer);
      throw error;
    }
  },
});
