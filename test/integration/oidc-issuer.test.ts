/**
 * Discovery and JWKS per issuer, against the real test IdP (oidc-provider on Node).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { generateKeyPair, SignJWT } from "jose";
import { IdpError, AccessTokenError } from "../../src/errors.ts";
import { createLogger } from "../../src/log.ts";
import { IssuerRegistry, splitIssuer, type IssuerSettings } from "../../src/oidc/client/issuer.ts";
import { verifyAccessToken } from "../../src/oidc/resource/verify-access-token.ts";
import { bunRuntime } from "../../src/runtime/bun.ts";
import { freePort } from "../support/gateway-process.ts";
import { SERVICE_SECRET, startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { waitUntil } from "../support/wait.ts";

const lines: Record<string, any>[] = [];
const log = createLogger("debug", (line) => lines.push(JSON.parse(line)));
const registry = () => new IssuerRegistry({ runtime: bunRuntime, trustedCertificates: [], log });
const settings = (issuer: string, extra: Partial<IssuerSettings> = {}): IssuerSettings => ({
  issuer,
  timeout: 2000,
  sslVerify: true,
  rediscoveryLifetime: 30,
  ...extra,
});
const policy = { algorithms: ["RS256", "ES256", "PS256"], leeway: 0 };

let idp: IdpProcess;
beforeAll(async () => {
  idp = await startIdpProcess();
});
afterAll(() => idp?.stop());

describe("issuer discovery", () => {
  it("fetches the discovery document and the JWKS at start", async () => {
    const issuer = await registry().acquire(settings(idp.issuer));
    const meta = issuer.peek();
    expect(meta?.discovery.issuer).toBe(idp.issuer);
    expect(meta?.discovery.token_endpoint).toBe(idp.tokenEndpoint);
    expect(meta?.jwks.keys.length).toBeGreaterThan(0);
    const view = issuer.view();
    expect(view.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(view.configuration?.jwks_uri).toBe(idp.jwksUri);
    expect(view.updated_at).toBeGreaterThan(Date.now() / 1000 - 60);
    for (const key of view.keys) expect(Object.keys(key)).not.toContain("d");
  });

  it("shares one issuer among plugin instances with the same settings", async () => {
    const r = registry();
    const a = await r.acquire(settings(idp.issuer));
    const b = await r.acquire(settings(idp.issuer));
    expect(a).toBe(b);
    expect(r.list()).toHaveLength(1);
    expect(r.find(idp.issuer)).toEqual([a]);
    expect(r.find(a.id)).toEqual([a]);
  });

  it("accepts the discovery document's URL as the issuer, as Kong does", async () => {
    expect(splitIssuer(`${idp.issuer}/.well-known/openid-configuration`)).toEqual({
      issuer: idp.issuer,
      discoveryUrl: `${idp.issuer}/.well-known/openid-configuration`,
    });
    const issuer = await registry().acquire(settings(`${idp.issuer}/.well-known/openid-configuration`));
    expect(issuer.issuer).toBe(idp.issuer);
    expect(issuer.peek()).toBeDefined();
  });

  it("refuses a discovery document whose issuer differs from the configured one, and says why", async () => {
    const configured = idp.issuer.replace("localhost", "127.0.0.1");
    const issuer = await registry().acquire(settings(configured));
    expect(issuer.peek()).toBeUndefined();
    const error = await issuer.metadata().catch((e) => e);
    expect(error).toBeInstanceOf(IdpError);
    expect(error.status).toBe(503);
    expect(error.detail).toBe(`the discovered issuer "${idp.issuer}" does not equal the configured 'issuer' "${configured}"`);
    expect(lines.some((l) => l.event === "oidc.issuer_unavailable" && l.issuer === configured && /does not equal/.test(l.detail))).toBe(true);
    expect(issuer.view().error).toContain("does not equal");
    issuer.stop();
  });

  it("starts with the IdP down, answers quickly meanwhile, and recovers in the background", async () => {
    await idp.fail(0, { targets: ["all"] }); // the IdP drops every connection
    let issuer;
    try {
      issuer = await registry().acquire(settings(idp.issuer));
      expect(issuer.peek()).toBeUndefined();
      const started = performance.now();
      const error = await issuer.metadata().catch((e) => e);
      expect(error).toBeInstanceOf(IdpError);
      expect(error.failure).toBe("unreachable");
      expect(performance.now() - started).toBeLessThan(500);
    } finally {
      await idp.normal();
    }
    const deadline = Date.now() + 8000;
    while (!issuer.peek() && Date.now() < deadline) await Bun.sleep(100);
    expect(issuer.peek()?.discovery.issuer).toBe(idp.issuer);
    issuer.stop();
  }, 15_000);

  it("answers at once when nothing listens at the issuer", async () => {
    const issuer = await registry().acquire(settings(`http://localhost:${await freePort()}/realms/master`));
    const started = performance.now();
    const error = await issuer.metadata().catch((e) => e);
    expect(error).toBeInstanceOf(IdpError);
    expect(error.status).toBe(503);
    expect(performance.now() - started).toBeLessThan(500);
    issuer.stop();
  });

  it("does not hold the start for longer than a few seconds when the IdP never answers", async () => {
    const blackHole = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const started = performance.now();
      const issuer = await registry().acquire(settings(`http://localhost:${blackHole.port}/realms/master`, { timeout: 10_000 }));
      expect(performance.now() - started).toBeLessThan(4000);
      expect(issuer.peek()).toBeUndefined();
      issuer.stop();
    } finally {
      blackHole.stop(true);
    }
  }, 10_000);

  it("drops an issuer from the registry when its last plugin instance lets go", async () => {
    const r = registry();
    const a = await r.acquire(settings(idp.issuer));
    await r.acquire(settings(idp.issuer));
    r.release(a);
    await Bun.sleep(0);
    expect(r.list()).toEqual([a]);
    r.release(a);
    await Bun.sleep(0);
    expect(r.list()).toEqual([]);
  });

  it("times out a slow IdP with a 504", async () => {
    await idp.delay(1500, { count: 1, targets: ["discovery"] });
    const issuer = await registry().acquire(settings(idp.issuer, { timeout: 300 }));
    const error = await issuer.metadata().catch((e) => e);
    expect(error).toBeInstanceOf(IdpError);
    expect(error.status).toBe(504);
    issuer.stop();
    await idp.normal();
  });

  it("refreshes stale metadata in the background and keeps it when the refresh fails", async () => {
    const issuer = await registry().acquire(settings(idp.issuer, { rediscoveryLifetime: 0.2 }));
    const first = issuer.peek()!;
    const logged = lines.length;
    await idp.fail(503, { targets: ["discovery"] });
    await Bun.sleep(250); // past rediscoveryLifetime: stale now
    expect(issuer.peek()).toBe(first); // stale is served while the refresh runs and fails
    // Checked once the refresh has failed, not after a fixed time in which it may not have.
    await waitUntil("the failed refresh", () => lines.slice(logged).some((l) => l.event === "oidc.issuer_refresh_failed"));
    expect(issuer.peek()).toBe(first);
    await idp.normal();
    // Once the IdP answers again, a read of the stale metadata refreshes it (in the background: wait for it).
    await waitUntil("the refreshed metadata", () => issuer.peek()!.updatedAt > first.updatedAt);
    issuer.stop();
  });

  it("forgets everything on request and rediscovers on next use", async () => {
    const issuer = await registry().acquire(settings(idp.issuer));
    const before = (await idp.stats()).discovery;
    issuer.forget();
    expect(issuer.peek()).toBeUndefined();
    await issuer.metadata();
    expect((await idp.stats()).discovery).toBe(before + 1);
  });
});

describe("issuer keys", () => {
  it("verifies a token the IdP issued", async () => {
    const issuer = await registry().acquire(settings(idp.issuer));
    const { access_token } = await idp.token("service", SERVICE_SECRET);
    const verified = await verifyAccessToken(access_token, issuer, policy);
    expect(verified.claims.client_id).toBe("service");
    expect(verified.claims.iss).toBe(idp.issuer);
  });

  it("refetches the JWKS at most once per rediscovery_lifetime however many unknown kids arrive", async () => {
    const issuer = await registry().acquire(settings(idp.issuer, { rediscoveryLifetime: 30 }));
    const before = (await idp.stats()).jwks;
    const { privateKey } = await generateKeyPair("RS256");
    const forged = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        new SignJWT({ sub: "attacker" })
          .setProtectedHeader({ alg: "RS256", kid: `random-${i}-${crypto.randomUUID()}` })
          .setIssuer(idp.issuer)
          .setExpirationTime("5m")
          .sign(privateKey),
      ),
    );
    for (const token of forged) {
      const error = await verifyAccessToken(token, issuer, policy).catch((e) => e);
      expect(error).toBeInstanceOf(AccessTokenError);
      expect(error.reason).toBe("unknown_key");
    }
    expect((await idp.stats()).jwks - before).toBe(1);
  });

  it("picks up a key the IdP rotated in, without a restart", async () => {
    const issuer = await registry().acquire(settings(idp.issuer));
    const { kid } = await idp.rotateKeys();
    const { access_token } = await idp.token("service", SERVICE_SECRET);
    expect(JSON.parse(atob(access_token.split(".")[0]!.replace(/-/g, "+").replace(/_/g, "/"))).kid).toBe(kid);
    const verified = await verifyAccessToken(access_token, issuer, policy);
    expect(verified.header.kid).toBe(kid);
    expect(issuer.view().keys.map((k) => k.kid)).toContain(kid);
  });

  it("answers an unknown kid with an IdP error, not a token error, when the IdP is down", async () => {
    const issuer = await registry().acquire(settings(idp.issuer));
    await idp.fail(0, { targets: ["all"] });
    try {
      const { privateKey } = await generateKeyPair("ES256");
      const token = await new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "new" }).setIssuer(idp.issuer).sign(privateKey);
      const error = await verifyAccessToken(token, issuer, policy).catch((e) => e);
      expect(error).toBeInstanceOf(IdpError);
    } finally {
      await idp.normal();
    }
  });
});
