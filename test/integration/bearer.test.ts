/**
 * `auth_methods = ["bearer"]` end to end: callers present JWT access tokens issued by the real
 * IdP (oidc-provider); the gateway (the compiled binary unless GATEWAY_RUNTIME says otherwise)
 * verifies them with the IdP's keys, applies `audience_required` / `scopes_required`, caches
 * the verdict per token, and proxies with `Authorization: Bearer <token>`.
 * Proof of possession (DPoP, mTLS) has its own suite: proof-of-possession.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { startGateway, type GatewayProcess, serverTable } from "../support/gateway-process.ts";
import { SERVICE_SECRET, startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { routePerSetting } from "../support/oidc-suite.ts";
import { b64u, makeProof, proofKey } from "../support/dpop-proof.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

let idp: IdpProcess;
let upstream: EchoUpstream;
let gw: GatewayProcess;
const gateways: GatewayProcess[] = [];
/** Every token sent, to prove none reached a log. */
const tokensSent = new Set<string>();

/** One route per plugin configuration under test; all with `auth_methods = ["bearer"]` unless said. */
const ROUTES: Record<string, string> = {
  plain: 'upstream_headers_claims = ["client_id", "scope"]\nupstream_headers_names = ["X-Client-Id", "X-Scope"]',
  scoped: 'scopes_required = ["api email", "profile"]',
  audience: 'audience_required = ["http://localhost:8000"]',
  "other-audience": 'audience_required = ["https://other.example", "http://localhost:8000 https://also.example"]',
  profile: "bearer_require_at_jwt = true",
  anywhere: 'bearer_token_param_type = ["header", "query", "body"]',
  "query-only": 'bearer_token_param_type = ["query"]',
  keep: 'hide_credentials = false\nbearer_token_param_type = ["header", "query", "body"]',
  "dpop-optional": 'proof_of_possession_dpop = "optional"',
  mixed: 'auth_methods = ["client_credentials", "bearer"]',
};

function gatewayConfig(): string {
  const settings = Object.entries(ROUTES).map(([name, extra]) => [
    name,
    extra.includes("auth_methods") ? extra : `auth_methods = ["bearer"]\n${extra}`,
  ]);
  return `${serverTable()}
${routePerSetting(upstream.url, idp.issuer, Object.fromEntries(settings))}`;
}

beforeAll(async () => {
  upstream = startEchoUpstream();
  idp = await startIdpProcess();
  gw = await startGateway({ config: gatewayConfig() });
  gateways.push(gw);
}, 30_000);

afterAll(async () => {
  for (const g of gateways) {
    const log = g.output.join("\n");
    expect(log).not.toContain(SERVICE_SECRET);
    for (const token of tokensSent) expect(log).not.toContain(token.split(".")[2]!.slice(0, 40));
    await g.stop();
  }
  await idp?.stop();
  await upstream?.stop();
});

/** An access token of the `service` client from the IdP's token endpoint, with `scope` when given. */
async function token(scope?: string): Promise<string> {
  const value = (await idp.token("service", SERVICE_SECRET, { scope })).access_token;
  tokensSent.add(value);
  return value;
}

interface Upstreamed {
  headers: Record<string, string>;
  args: Record<string, string>;
  data: string;
}

async function call(path: string, init: RequestInit = {}, target: GatewayProcess = gw) {
  const res = await fetch(`${target.proxyUrl}${path}`, init);
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    text,
    body: (() => {
      try {
        return JSON.parse(text);
      } catch {
        return undefined;
      }
    })(),
    upstream: res.status === 200 ? (JSON.parse(text) as Upstreamed) : undefined,
    requestId: res.headers.get("x-request-id")!,
  };
}

const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });
const part = (jwt: string, i: 0 | 1) => JSON.parse(Buffer.from(jwt.split(".")[i]!, "base64url").toString());

describe("a bearer JWT from the issuer", () => {
  let api: string;
  beforeAll(async () => {
    api = await token("api email");
  });

  it("is refused without credentials: 401 with a Bearer challenge and no error code (RFC 6750 §3.1)", async () => {
    const r = await call("/plain");
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toBe('Bearer realm="oidc-gateway"');
    expect(r.body).toEqual({ message: "Unauthorized" });
  });

  it("is accepted and sent upstream as `Authorization: Bearer <token>`, with claims in headers", async () => {
    const r = await call("/plain", bearer(api));
    expect(r.status).toBe(200);
    expect(r.upstream!.headers.authorization).toBe(`Bearer ${api}`);
    expect(r.upstream!.headers["x-client-id"]).toBe("service");
    expect(r.upstream!.headers["x-scope"]).toBe("api email");
  });

  it("never lets a caller's own claim headers through: a mapped header whose claim the token lacks is removed, one it has is replaced", async () => {
    const noScope = await token();
    expect(part(noScope, 1).scope).toBeUndefined();
    const r = await call("/plain", { headers: { authorization: `Bearer ${noScope}`, "x-scope": "admin", "X-Client-Id": "someone-else" } });
    expect(r.status).toBe(200);
    expect(r.upstream!.headers["x-scope"]).toBeUndefined();
    expect(r.upstream!.headers["x-client-id"]).toBe("service");
  });

  it("is verified once: the repeat request is a cache hit that costs the IdP nothing", async () => {
    const fresh = await token("api");
    const first = await call("/plain", bearer(fresh));
    const before = await idp.stats();
    const second = await call("/plain", bearer(fresh));
    expect([first.status, second.status]).toEqual([200, 200]);
    expect((await gw.waitForLog((l) => l.event === "http.request" && l.request_id === first.requestId)).token_cache).toBe("miss");
    expect((await gw.waitForLog((l) => l.event === "http.request" && l.request_id === second.requestId)).token_cache).toBe("hit");
    const after = await idp.stats();
    expect([after.jwks, after.discovery, after.introspection]).toEqual([before.jwks, before.discovery, before.introspection]);
  });

  it("takes the scheme name in any case (RFC 9110 §11.1)", async () => {
    for (const scheme of ["bearer", "BEARER", "bEaReR"])
      expect((await call("/plain", { headers: { authorization: `${scheme} ${api}` } })).status).toBe(200);
  });

  it("answers a malformed Authorization header with 400 or 401, never 500", async () => {
    for (const header of [
      "Bearer",
      "Bearer ",
      `Bearer\t${api}`,
      `Bearer ${api} extra`,
      `Bearer ${api},x`,
      "Bearer a\u00e9b",
      `Bearer ${api}, Bearer ${api}`,
      "Bearer ===",
      "Token abc",
      "\u00ff\u00fe",
    ]) {
      let status: number;
      try {
        status = (await call("/plain", { headers: { authorization: header } })).status;
      } catch {
        continue; // the client itself refused to send it
      }
      expect({ header, status: [400, 401].includes(status) }).toEqual({ header, status: true });
    }
  });

  it("answers Bearer and DPoP schemes at once with 400 invalid_request", async () => {
    const r = await fetch(`${gw.proxyUrl}/dpop-optional`, {
      headers: [
        ["authorization", `Bearer ${api}`],
        ["authorization", `DPoP ${api}`],
      ],
    });
    expect(r.status).toBe(400);
    expect(r.headers.get("www-authenticate")).toContain('error="invalid_request"');
  });

  it("looks only in the Authorization header by default (RFC 6750 §2.3, RFC 9700: no tokens in URLs): a token in the query or body is not taken", async () => {
    for (const r of [
      await call(`/plain?access_token=${api}`),
      await call("/plain", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `access_token=${api}` }),
    ]) {
      expect(r.status).toBe(401);
      expect(r.headers.get("www-authenticate")).toBe('Bearer realm="oidc-gateway"');
    }
  });

  it("takes the token from the query or a form body where bearer_token_param_type allows, and hides it from the upstream", async () => {
    const q = await call(`/anywhere?page=2&access_token=${api}`);
    expect(q.status).toBe(200);
    expect(q.upstream!.args).toEqual({ page: "2" });
    expect(q.upstream!.headers.authorization).toBe(`Bearer ${api}`);
    const b = await call("/anywhere", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `a=1&access_token=${api}`,
    });
    expect(b.status).toBe(200);
    expect(b.upstream!.data).toBe("a=1");
    const j = await call("/anywhere", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ a: 1, access_token: api }),
    });
    expect(j.status).toBe(200);
    expect(JSON.parse(j.upstream!.data)).toEqual({ a: 1 });
  });

  it("keeps the caller's query and body with hide_credentials = false", async () => {
    const q = await call(`/keep?page=2&access_token=${api}`);
    expect(q.upstream!.args).toEqual({ page: "2", access_token: api });
    const body = `a=1&access_token=${api}&b=2`;
    const b = await call("/keep", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body });
    expect(b.status).toBe(200);
    expect(b.upstream!.data).toBe(body);
  });

  it("streams a large body it does not parse to the upstream untouched", async () => {
    const big = "x=" + "y".repeat(200_000);
    const r = await call("/anywhere", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: `Bearer ${api}` },
      body: big,
    });
    expect(r.status).toBe(200);
    expect(r.upstream!.data.length).toBe(big.length);
    const unauthenticated = await call("/anywhere", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: big });
    expect(unauthenticated.status).toBe(401);
  });

  it("refuses a token sent two ways at once with 400 invalid_request (RFC 6750 §2: header and query, header and body), and never proxies it", async () => {
    const lastProxied = upstream.seen.at(-1);
    const twoWays = [
      await call(`/anywhere?access_token=${api}`, bearer(api)),
      await call("/anywhere", {
        method: "POST",
        headers: { authorization: `Bearer ${api}`, "content-type": "application/x-www-form-urlencoded" },
        body: `a=1&access_token=${api}`,
      }),
      await call("/anywhere", {
        method: "POST",
        headers: { authorization: `Bearer ${api}`, "content-type": "application/json" },
        body: JSON.stringify({ access_token: api }),
      }),
      await call("/keep", {
        method: "POST",
        headers: { authorization: `Bearer ${api}`, "content-type": "application/x-www-form-urlencoded" },
        body: `access_token=${api}`,
      }),
    ];
    for (const r of twoWays) {
      expect(r.status).toBe(400);
      expect(r.headers.get("www-authenticate")).toContain('error="invalid_request"');
    }
    expect(upstream.seen.at(-1)).toBe(lastProxied);
  });

  it("looks only where bearer_token_param_type says", async () => {
    expect((await call("/query-only", bearer(api))).status).toBe(401);
    expect((await call(`/query-only?access_token=${api}`)).status).toBe(200);
  });

  it("does not claim a Basic header: 401 with the challenge and no error code", async () => {
    const r = await call("/plain", { headers: { authorization: `Basic ${btoa(`service:${SERVICE_SECRET}`)}` } });
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toBe('Bearer realm="oidc-gateway"');
  });

  it("with client_credentials too, gives a Basic header to client credentials and a Bearer header to bearer", async () => {
    const none = await call("/mixed");
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Basic realm="oidc-gateway", Bearer realm="oidc-gateway"');
    const viaBasic = await call("/mixed", { headers: { authorization: `Basic ${btoa(`service:${SERVICE_SECRET}`)}` } });
    expect(viaBasic.status).toBe(200);
    expect(viaBasic.upstream!.headers.authorization).not.toBe(`Bearer ${api}`);
    expect(part(viaBasic.upstream!.headers.authorization!.slice(7), 1).client_id).toBe("service");
    const viaBearer = await call("/mixed", bearer(api));
    expect(viaBearer.status).toBe(200);
    expect(viaBearer.upstream!.headers.authorization).toBe(`Bearer ${api}`);
  });

  it("passes the RFC 9068 profile check when bearer_require_at_jwt is set", async () => {
    expect(part(api, 0).typ).toBe("at+jwt");
    expect((await call("/profile", bearer(api))).status).toBe(200);
  });
});

describe("scopes_required (Kong: entries are alternatives, space-separated scopes are all required)", () => {
  it("lets in a token with every scope of one entry", async () => {
    expect((await call("/scoped", bearer(await token("api email")))).status).toBe(200);
    expect((await call("/scoped", bearer(await token("profile")))).status).toBe(200);
  });

  it("answers 403 insufficient_scope with the scope needed when one scope of each entry is missing", async () => {
    for (const scope of ["api", "email", undefined]) {
      const r = await call("/scoped", bearer(await token(scope)));
      expect(r.status).toBe(403);
      expect(r.body).toEqual({ message: "Forbidden" });
      expect(r.headers.get("www-authenticate")).toBe(
        'Bearer realm="oidc-gateway", error="insufficient_scope", error_description="the token lacks a required scope (\'scopes_required\')", scope="api email"',
      );
    }
  });
});

describe("audience_required", () => {
  it("lets in a token whose aud is required", async () => {
    expect((await call("/audience", bearer(await token()))).status).toBe(200);
  });

  it("refuses a token for another audience with 401 invalid_token (RFC 9068 §4), also when only part of an entry matches", async () => {
    const r = await call("/other-audience", bearer(await token()));
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toContain('error="invalid_token"');
    expect(r.headers.get("www-authenticate")).toContain("audience_required");
  });
});

describe("tokens that are not valid here", () => {
  const invalidToken = (r: { status: number; headers: Headers }) => {
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toStartWith('Bearer realm="oidc-gateway", error="invalid_token", error_description="');
  };

  it("refuses an expired token, also one the gateway had cached", async () => {
    await idp.setAccessTokenTtl(2);
    let shortLived: string;
    try {
      shortLived = await token();
    } finally {
      await idp.setAccessTokenTtl(300);
    }
    expect((await call("/plain", bearer(shortLived))).status).toBe(200);
    await Bun.sleep(2100);
    const r = await call("/plain", bearer(shortLived));
    invalidToken(r);
    expect(r.headers.get("www-authenticate")).toContain("expired");
  }, 10_000);

  it("refuses a token of another issuer", async () => {
    const other = await startIdpProcess({ options: { realm: "other" } });
    try {
      const res = await fetch(other.tokenEndpoint, {
        method: "POST",
        headers: { authorization: `Basic ${btoa(`service:${SERVICE_SECRET}`)}`, "content-type": "application/x-www-form-urlencoded" },
        body: "grant_type=client_credentials",
      });
      const foreign = ((await res.json()) as { access_token: string }).access_token;
      tokensSent.add(foreign);
      expect(part(foreign, 1).iss).toBe(other.issuer);
      invalidToken(await call("/plain", bearer(foreign)));
    } finally {
      await other.stop();
    }
  }, 20_000);

  it("refuses forged tokens: alg none, HS256 keyed with the IdP's public key, another key under the IdP's kid, a changed payload", async () => {
    const real = await token("api");
    const [h, p] = real.split(".");
    const header = part(real, 0);
    const claims = part(real, 1);
    const jwks = await (await fetch(idp.jwksUri)).text();
    const none = `${b64u(JSON.stringify({ alg: "none", typ: "at+jwt" }))}.${p}.`;
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: header.kid }).sign(new TextEncoder().encode(jwks));
    const { privateKey, publicKey } = await generateKeyPair("RS256");
    const foreign = await new SignJWT(claims).setProtectedHeader({ alg: "RS256", typ: "at+jwt", kid: header.kid }).sign(privateKey);
    const embedded = await new SignJWT(claims).setProtectedHeader({ alg: "RS256", typ: "at+jwt", jwk: await exportJWK(publicKey) }).sign(privateKey);
    const changed = `${h}.${b64u(JSON.stringify({ ...claims, scope: "api email profile" }))}.${real.split(".")[2]}`;
    for (const forged of [none, hs, foreign, embedded, changed]) invalidToken(await call("/plain", bearer(forged)));
  });

  it("refuses an opaque token when introspection is not enabled", async () => {
    invalidToken(await call("/plain", bearer("opaque-token-value")));
  });

  it("answers the same bad token again from the negative cache, still 401", async () => {
    const bad = `${(await token()).slice(0, -4)}AAAA`;
    invalidToken(await call("/plain", bearer(bad)));
    const again = await call("/plain", bearer(bad));
    invalidToken(again);
    expect((await gw.waitForLog((l) => l.event === "http.request" && l.request_id === again.requestId)).token_cache).toBe("negative");
  });
});

describe("latency", () => {
  it("adds little to the plain route on the bearer and the bearer+DPoP path (2000 sequential requests each)", async () => {
    const plain = await startGateway({
      config: `${serverTable()}[[services]]\nname = "echo"\nurl = "${upstream.url}/anything"\n[[routes]]\nname = "all"\nservice = "echo"\npaths = ["/"]\n`,
    });
    gateways.push(plain);
    const N = 2000;
    const WARM = 200;
    const measure = async (url: string, init: (i: number) => RequestInit) => {
      for (let i = 0; i < WARM; i++) await (await fetch(url, init(i))).arrayBuffer();
      const times: number[] = [];
      for (let i = WARM; i < WARM + N; i++) {
        const request = init(i);
        const t = performance.now();
        const res = await fetch(url, request);
        await res.arrayBuffer();
        times.push(performance.now() - t);
        if (res.status !== 200) throw new Error(`status ${res.status}`);
      }
      times.sort((a, b) => a - b);
      return { p50: times[Math.floor(N * 0.5)]!, p99: times[Math.floor(N * 0.99)]! };
    };
    const api = await token("api");
    // A DPoP-bound token, and one proof per request made before the clock starts.
    const key = await proofKey("ES256");
    const bound = (
      await idp.token("client-dpop-auth", "client-dpop-auth-secret", { dpop: await makeProof({ key, method: "POST", url: idp.tokenEndpoint }) })
    ).access_token;
    tokensSent.add(bound);
    const dpopUrl = `${gw.proxyUrl}/dpop-optional`;
    const proofs = await Promise.all(Array.from({ length: WARM + N }, () => makeProof({ key, method: "GET", url: dpopUrl, accessToken: bound })));

    const base = await measure(`${plain.proxyUrl}/plain`, () => ({}));
    const withBearer = await measure(`${gw.proxyUrl}/plain`, () => bearer(api));
    const withDpop = await measure(dpopUrl, (i) => ({ headers: { authorization: `DPoP ${bound}`, dpop: proofs[i]! } }));
    const fmt = (r: { p50: number; p99: number }) => `p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms`;
    console.log(
      `latency over ${N} sequential requests: plain route ${fmt(base)}; bearer JWT (cached) ${fmt(withBearer)}; bearer + DPoP proof ${fmt(withDpop)}`,
    );
    expect(withBearer.p50 - base.p50).toBeLessThan(2);
    expect(withDpop.p50 - base.p50).toBeLessThan(5);
  }, 90_000);
});
