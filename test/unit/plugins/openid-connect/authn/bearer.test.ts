/**
 * The `bearer` authenticator inside a real Hono context, with the issuer's keys held locally (a
 * JWKS in memory stands in for the discovered one; the flows against the real IdP are in
 * test/integration/bearer.test.ts): what it accepts, and whose fault a refusal is.
 */
// The plugin registry first, as the gateway loads it: the plugin modules import each other in a cycle through the config schema.
import "../../../../../src/plugins/registry.ts";
import { describe, expect, it } from "bun:test";
import { Hono } from "hono";
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet, type JWTPayload } from "jose";
import { AuthError, IdpError } from "../../../../../src/errors.ts";
import { errorResponse } from "../../../../../src/gateway/error-response.ts";
import type { GatewayEnv } from "../../../../../src/gateway/context.ts";
import { createLogger } from "../../../../../src/log.ts";
import type { Issuer } from "../../../../../src/oidc/client/issuer.ts";
import type { Principal } from "../../../../../src/plugins/openid-connect/authn/authenticator.ts";
import { bearerAuthenticator } from "../../../../../src/plugins/openid-connect/authn/bearer.ts";
import { openIdConnectSchema } from "../../../../../src/plugins/openid-connect/schema.ts";
import type { PluginContext } from "../../../../../src/plugins/types.ts";
import { bunRuntime } from "../../../../../src/runtime/bun.ts";

const ISSUER = "https://idp.example/realms/master";
const { privateKey, publicKey } = await generateKeyPair("RS256");
const PUBLIC_JWK = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };

const ctx = {
  runtime: bunRuntime,
  log: createLogger("error", () => {}),
  shared: { once: <T>(_key: string, create: () => T) => create() },
  server: {},
} as unknown as PluginContext;

/** An issuer whose keys are `jwks`; `keyFetches` counts how often the key resolver was asked. */
function localIssuer(jwks: JSONWebKeySet) {
  let set: ReturnType<typeof createLocalJWKSet> | undefined;
  const issuer = {
    issuer: ISSUER,
    keyFetches: 0,
    getKey: (...args: Parameters<ReturnType<typeof createLocalJWKSet>>) => {
      issuer.keyFetches++;
      set ??= createLocalJWKSet(jwks);
      return set(...args);
    },
  };
  return issuer;
}

async function bearer(config: Record<string, unknown> = {}, jwks: JSONWebKeySet = { keys: [PUBLIC_JWK] }) {
  const issuer = localIssuer(jwks);
  const parsed = openIdConnectSchema().parse({ issuer: ISSUER, auth_methods: ["bearer"], ...config });
  const authenticator = await bearerAuthenticator({ config: parsed, issuer: issuer as unknown as Issuer, keys: issuer as unknown as Issuer, ctx });
  /** Authenticates one request carrying `token`; the principal or what was thrown. */
  const present = async (token: string): Promise<{ principal?: Principal; error?: unknown }> => {
    const app = new Hono<GatewayEnv>();
    let outcome: { principal?: Principal; error?: unknown } = {};
    app.all("*", async (c) => {
      c.set("upstreamHeaders", new Headers(c.req.raw.headers));
      c.set("logFields", {});
      try {
        const principal = await authenticator.authenticate(c);
        outcome = principal ? { principal } : {};
      } catch (error) {
        outcome = { error };
      }
      return c.text("ok");
    });
    await app.fetch(new Request("http://gw/x", { headers: { authorization: `Bearer ${token}` } }), { tls: false, localPort: 80 });
    return outcome;
  };
  return { present, issuer };
}

const now = () => Math.floor(Date.now() / 1000);
const sign = (claims: JWTPayload, kid = "k1") =>
  new SignJWT({ iss: ISSUER, sub: "service", ...claims }).setProtectedHeader({ alg: "RS256", kid, typ: "at+jwt" }).sign(privateKey);

const invalidToken = (outcome: { error?: unknown }) => {
  expect(outcome.error).toBeInstanceOf(AuthError);
  expect((outcome.error as AuthError).status).toBe(401);
  expect((outcome.error as AuthError).error).toBe("invalid_token");
  return (outcome.error as AuthError).description;
};

describe("bearer tokens need an expiry", () => {
  it("accepts a JWT of the issuer with exp", async () => {
    const { present } = await bearer();
    expect((await present(await sign({ exp: now() + 300, iat: now() }))).principal?.grant.claims?.sub).toBe("service");
  });

  it("refuses a JWT without exp with 401 invalid_token (RFC 9068 §2.2), also without bearer_require_at_jwt", async () => {
    const { present } = await bearer();
    expect(invalidToken(await present(await sign({ iat: now() })))).toBe('the token has no "exp" claim');
  });
});

describe("an issuer key that cannot be used", () => {
  it("is our failure: 502, not the caller's 401, and never remembered as the token's verdict (the next request asks for the key again)", async () => {
    const broken = { ...PUBLIC_JWK, n: "!!" };
    const { present, issuer } = await bearer({}, { keys: [broken] });
    const token = await sign({ exp: now() + 300, iat: now() });
    for (const attempt of [1, 2]) {
      const { error } = await present(token);
      expect(error).toBeInstanceOf(IdpError);
      expect(errorResponse(error).status).toBe(502);
      expect(issuer.keyFetches).toBe(attempt);
    }
  });
});

describe("the bearer claims cache in the metrics", () => {
  it('counts each lookup as a miss or hit under cache "bearer" and reports its entries', async () => {
    const events: string[] = [];
    const sizes = new Map<string, () => number>();
    const metrics = {
      tokenCache: (cache: string, event: string) => events.push(`${cache}:${event}`),
      tokenCacheSize: (cache: string, size: () => number) => sizes.set(cache, size),
    };
    const parsed = openIdConnectSchema().parse({ issuer: ISSUER, auth_methods: ["bearer"] });
    const local = localIssuer({ keys: [PUBLIC_JWK] }) as unknown as Issuer;
    const authenticator = await bearerAuthenticator({
      config: parsed,
      issuer: local,
      keys: local,
      ctx: { ...ctx, metrics } as unknown as PluginContext,
    });
    const token = await sign({ exp: now() + 300, iat: now(), client_id: "c", jti: "j" });
    const app = new Hono<GatewayEnv>();
    app.all("*", async (c) => {
      c.set("upstreamHeaders", new Headers());
      c.set("logFields", {});
      await authenticator.authenticate(c);
      return c.text("ok");
    });
    for (let i = 0; i < 2; i++)
      await app.fetch(new Request("http://gw/x", { headers: { authorization: `Bearer ${token}` } }), { tls: false, localPort: 80 });
    expect(events).toEqual(["bearer:miss", "bearer:hit"]);
    expect(sizes.get("bearer")?.()).toBe(1);
    authenticator.close?.();
    expect(sizes.get("bearer")?.()).toBe(0);
  });
});
