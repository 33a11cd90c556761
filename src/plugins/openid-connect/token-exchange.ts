/**
 * Token exchange (RFC 8693): after the caller is authenticated and authorized, its access token
 * is exchanged at the IdP for one meant for the upstream (`token_exchange_resource`,
 * `token_exchange_audience`, `token_exchange_scopes`), with the gateway's own client
 * authentication. The result is cached under a keyed hash of the caller's token, never past the
 * smaller of the two tokens' lifetimes. A subject token the IdP refuses is the caller's 401.
 * Like the other token endpoint calls it sends `token_headers_*` and `token_post_args_*` (the
 * exchange's own parameters win). Kong's exchange is proprietary (the token as a Bearer header to
 * `token_exchange_endpoint`) and sends neither; this one is RFC 8693's.
 */
import { gatewayClientSettings } from "../../oidc/client/client-auth-schema.ts";
import { createGatewayClient } from "../../oidc/client/client-auth.ts";
import { requestGrant, TOKEN_EXCHANGE_GRANT } from "../../oidc/client/client-requests.ts";
import { createKeyedHash } from "../../oidc/client/cache-key.ts";
import type { Issuer } from "../../oidc/client/issuer.ts";
import { TokenCache } from "../../oidc/client/token-cache.ts";
import { cachePolicy } from "./authn/token-flow.ts";
import { meterCacheSize } from "../../oidc/client/token-cache-metrics.ts";
import type { PluginContext } from "../types.ts";
import type { Grant } from "./mutate.ts";
import { namedValues, type OpenIdConnectConfig } from "./schema.ts";

export interface TokenExchange {
  /** The grant the upstream gets instead of the caller's; the caller's claims stay its claims. */
  exchange(grant: Grant): Promise<Grant>;
  close(): void;
}

/** On when any token exchange key is set. */
function tokenExchangeEnabled(config: Readonly<OpenIdConnectConfig>): boolean {
  return (
    config.token_exchange_endpoint !== undefined ||
    config.token_exchange_resource !== undefined ||
    config.token_exchange_audience.length > 0 ||
    config.token_exchange_scopes.length > 0
  );
}

function expiresAtOf(claims: Readonly<Record<string, unknown>> | undefined): number | undefined {
  return typeof claims?.exp === "number" ? claims.exp * 1000 : undefined;
}

export async function createTokenExchange(
  config: Readonly<OpenIdConnectConfig>,
  issuer: Issuer,
  ctx: PluginContext,
): Promise<TokenExchange | undefined> {
  if (!tokenExchangeEnabled(config)) return undefined;
  const client = await createGatewayClient(
    gatewayClientSettings({ ...config, client_id: config.client_id! }, config.timeout, {
      endpoints: { token_endpoint: config.token_exchange_endpoint ?? config.token_endpoint },
    }),
    { ctx, fetch: issuer.fetch, where: 'plugin "openid-connect"', proxy: issuer.settings.proxy },
  );
  const headers = namedValues(config.token_headers_names, config.token_headers_values);
  const postArgs = namedValues(config.token_post_args_names, config.token_post_args_values);
  const parameters =
    postArgs || config.token_exchange_resource
      ? { ...postArgs, ...(config.token_exchange_resource ? { resource: config.token_exchange_resource } : {}) }
      : undefined;
  const cache = new TokenCache<Grant>(cachePolicy(config), { onEvict: () => ctx.metrics?.tokenCache("token_exchange", "eviction") });
  const closeCache = meterCacheSize(ctx, "token_exchange", cache);
  const hash = await createKeyedHash(config.cache_tokens_salt, ctx.runtime.hmacSha256);

  const exchangeNow = async (grant: Grant) => {
    const meta = await issuer.metadata();
    const started = performance.now();
    try {
      const response = await requestGrant(
        client.call(meta.discovery, "token_endpoint"),
        { type: TOKEN_EXCHANGE_GRANT, subjectToken: grant.token },
        {
          scopes: config.token_exchange_scopes,
          audience: config.token_exchange_audience,
          ...(parameters ? { parameters } : {}),
          ...(headers ? { headers } : {}),
          allowHttp: issuer.allowHttp,
          timeout: config.timeout,
        },
      );
      ctx.metrics?.idp("token", "ok", (performance.now() - started) / 1000);
      const subjectExpiry = expiresAtOf(grant.claims);
      const ownExpiry = typeof response.expires_in === "number" ? Date.now() + response.expires_in * 1000 : undefined;
      const expiresAt = subjectExpiry !== undefined && ownExpiry !== undefined ? Math.min(subjectExpiry, ownExpiry) : (subjectExpiry ?? ownExpiry);
      return { value: { token: response.access_token, claims: grant.claims }, ...(expiresAt !== undefined ? { expiresAt } : {}) };
    } catch (error) {
      ctx.metrics?.idp("token", "error", (performance.now() - started) / 1000);
      throw error;
    }
  };

  return {
    async exchange(grant) {
      if (!config.cache_token_exchange) return (await exchangeNow(grant)).value;
      const result = await cache.get(await hash([grant.token]), () => exchangeNow(grant));
      if (result.state === "negative") throw result.error;
      ctx.metrics?.tokenCache("token_exchange", result.state === "hit" ? "hit" : "miss");
      return result.value;
    },
    close: closeCache,
  };
}
