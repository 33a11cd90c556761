/**
 * Kong's client credentials grant workflow, end to end: a caller presents `client_id:client_secret`,
 * the gateway gets a token from the real IdP (oidc-provider), verifies it, caches the token endpoint
 * call, and proxies with `Authorization: Bearer <token>`. The gateway is the compiled binary
 * unless GATEWAY_RUNTIME says otherwise.
 */
import { beforeAll, describe, expect, it } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { simpleConfig, startGateway, type GatewayProcess, type GatewayRuntime } from "../support/gateway-process.ts";
import { SERVICE_SECRET } from "../support/idp-process.ts";
import { oidcSuite } from "../support/oidc-suite.ts";

const CLIENTS = {
  b: { id: "service-b", secret: "service-b-secret-0123456789" },
  c: { id: "service-c", secret: "service-c-secret-0123456789" },
  ttl: { id: "short-lived", secret: "short-lived-secret-0123456789" },
  burst: { id: "burst", secret: "burst-secret-0123456789" },
  late: { id: "late", secret: "late-secret-0123456789" },
  rotated: { id: "rotated", secret: "rotated-secret-0123456789" },
} as const;
const ALL_SECRETS = [SERVICE_SECRET, "opaque-secret", ...Object.values(CLIENTS).map((c) => c.secret)];

/** Every token the upstream received, to prove none reached a log. */
const tokensSeen = new Set<string>();
// Secrets and tokens never reach the gateway's log, whatever happens in the tests.
const { idp, upstream, gateways } = oidcSuite({
  idp: { options: { extraClients: Object.values(CLIENTS).map((c) => ({ client_id: c.id, client_secret: c.secret })) } },
  neverLogged: () => [...ALL_SECRETS, ...[...tokensSeen].map((token) => token.slice(-40))],
});

function config(plugin = "", service = `${upstream.url}/anything`): string {
  return simpleConfig(
    service,
    `
[[plugins]]
name = "openid-connect"
[plugins.config]
issuer = "${idp.issuer}"
auth_methods = ["client_credentials"]
${plugin}`,
  );
}

async function gateway(plugin = "", runtime?: GatewayRuntime): Promise<GatewayProcess> {
  const gw = await startGateway({ config: config(plugin), ...(runtime ? { runtime } : {}) });
  gateways.push(gw);
  return gw;
}

const basic = (id: string, secret: string) => `Basic ${btoa(`${id}:${secret}`)}`;
const tokenCalls = async (clientId: string) => (await idp.stats()).token.byClient[clientId] ?? 0;
const payload = (jwt: string) => JSON.parse(atob(jwt.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")));

/** A request through the gateway; `upstream` is what the echo upstream saw. */
async function call(gw: GatewayProcess, init: RequestInit & { path?: string } = {}) {
  const res = await fetch(`${gw.proxyUrl}${init.path ?? "/openid-connect"}`, init);
  const text = await res.text();
  let upstreamSaw: { headers: Record<string, string>; args: Record<string, string>; data: string } | undefined;
  if (res.status === 200) {
    upstreamSaw = JSON.parse(text);
    const auth = upstreamSaw!.headers.authorization;
    if (auth?.startsWith("Bearer ")) tokensSeen.add(auth.slice(7));
  }
  return { status: res.status, headers: res.headers, text, upstream: upstreamSaw, requestId: res.headers.get("x-request-id") };
}

const serviceAuth = { headers: { authorization: basic("service", SERVICE_SECRET) } };

describe("the client credentials grant at the edge", () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await gateway();
  });

  it("answers the first request with 200 and sends the upstream a Bearer JWT issued to the service client", async () => {
    const before = await tokenCalls("service");
    const r = await call(gw, serviceAuth);
    expect(r.status).toBe(200);
    const auth = r.upstream!.headers.authorization!;
    expect(auth).toMatch(/^Bearer [\w-]+\.[\w-]+\.[\w-]+$/);
    const claims = payload(auth.slice(7));
    expect(claims.client_id).toBe("service");
    expect(claims.iss).toBe(idp.issuer);
    expect(await tokenCalls("service")).toBe(before + 1);
  });

  it("serves the repeat request from the cache: no token endpoint call, and the access log says hit", async () => {
    const first = await call(gw, serviceAuth);
    const before = await tokenCalls("service");
    const second = await call(gw, serviceAuth);
    expect(second.status).toBe(200);
    expect(second.upstream!.headers.authorization).toBe(first.upstream!.headers.authorization!);
    expect(await tokenCalls("service")).toBe(before);
    const line = await gw.waitForLog((l) => l.event === "http.request" && l.request_id === second.requestId);
    expect(line.token_cache).toBe("hit");
    expect(line.status).toBe(200);
  });

  it("refuses a wrong secret after a success with 401, having asked the IdP", async () => {
    await call(gw, serviceAuth);
    const before = await idp.stats();
    const r = await call(gw, { headers: { authorization: basic("service", "not-the-secret") } });
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toBe('Basic realm="oidc-gateway"');
    expect(JSON.parse(r.text)).toEqual({ message: "Unauthorized" });
    const after = await idp.stats();
    expect(after.token.byClient.service).toBe((before.token.byClient.service ?? 0) + 1);
    expect(after.token.byStatus["401"]).toBe((before.token.byStatus["401"] ?? 0) + 1);
  });

  it("answers the same wrong secret from the negative cache instead of asking the IdP again", async () => {
    const wrong = { headers: { authorization: basic("service", "wrong-again") } };
    expect((await call(gw, wrong)).status).toBe(401);
    const before = await tokenCalls("service");
    for (let i = 0; i < 5; i++) expect((await call(gw, wrong)).status).toBe(401);
    expect(await tokenCalls("service")).toBe(before);
  });

  it("answers a request without credentials with 401 and a challenge", async () => {
    const r = await call(gw);
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate")).toBe('Basic realm="oidc-gateway"');
    expect(JSON.parse(r.text)).toEqual({ message: "Unauthorized" });
    expect((await call(gw, { headers: { authorization: "Bearer some.other.token" } })).status).toBe(401);
  });

  it("answers malformed Basic credentials with 401, never 500, without asking the IdP", async () => {
    const before = (await idp.stats()).token.total;
    for (const header of [
      "Basic",
      "Basic !!!",
      "Basic abcde",
      basic("service", ""),
      basic("", "x"),
      `Basic ${btoa("no-colon")}`,
      basic("a%zz", "b"),
      `${basic("a", "b")}, ${basic("c", "d")}`,
    ]) {
      const r = await call(gw, { headers: { authorization: header } });
      expect({ header, status: r.status }).toEqual({ header, status: 401 });
    }
    expect((await idp.stats()).token.total).toBe(before);
  });

  it("makes exactly one token endpoint call for 200 concurrent cold requests of one client", async () => {
    const auth = { headers: { authorization: basic(CLIENTS.burst.id, CLIENTS.burst.secret) } };
    const results = await Promise.all(Array.from({ length: 200 }, () => call(gw, auth)));
    expect(results.map((r) => r.status)).toEqual(Array(200).fill(200));
    expect(new Set(results.map((r) => r.upstream!.headers.authorization)).size).toBe(1);
    expect(await tokenCalls(CLIENTS.burst.id)).toBe(1);
  });

  it("gives distinct clients distinct tokens", async () => {
    const a = await call(gw, serviceAuth);
    const b = await call(gw, { headers: { authorization: basic(CLIENTS.b.id, CLIENTS.b.secret) } });
    expect(b.status).toBe(200);
    const ta = a.upstream!.headers.authorization!;
    const tb = b.upstream!.headers.authorization!;
    expect(ta).not.toBe(tb);
    expect(payload(tb.slice(7)).client_id).toBe(CLIENTS.b.id);
  });

  it("also takes credentials from the query and the body, and hides them from the upstream", async () => {
    const q = await call(gw, { path: `/openid-connect?page=2&client_id=${CLIENTS.c.id}&client_secret=${CLIENTS.c.secret}` });
    expect(q.status).toBe(200);
    expect(q.upstream!.args).toEqual({ page: "2" });
    expect(payload(q.upstream!.headers.authorization!.slice(7)).client_id).toBe(CLIENTS.c.id);
    const b = await call(gw, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `a=1&client_id=${CLIENTS.c.id}&client_secret=${CLIENTS.c.secret}`,
    });
    expect(b.status).toBe(200);
    expect(b.upstream!.data).toBe("a=1");
  });

  it("passes an opaque access token on as issued", async () => {
    const r = await call(gw, { headers: { authorization: basic("opaque", "opaque-secret") } });
    expect(r.status).toBe(200);
    const auth = r.upstream!.headers.authorization!;
    expect(auth).toMatch(/^Bearer [\w-]+$/);
    expect(auth.split(".")).toHaveLength(1);
  });

  it("verifies tokens signed with a key the IdP rotated in, without a restart", async () => {
    const jwksBefore = (await idp.stats()).jwks;
    const { kid } = await idp.rotateKeys();
    const r = await call(gw, { headers: { authorization: basic(CLIENTS.rotated.id, CLIENTS.rotated.secret) } });
    expect(r.status).toBe(200);
    const token = r.upstream!.headers.authorization!.slice(7);
    expect(JSON.parse(atob(token.split(".")[0]!.replace(/-/g, "+").replace(/_/g, "/"))).kid).toBe(kid);
    expect((await idp.stats()).jwks).toBe(jwksBefore + 1);
  });

  describe("the issuers admin API", () => {
    it("lists the discovered issuer with its discovery document and public keys", async () => {
      const res = await fetch(`${gw.adminUrl}/openid-connect/issuers`);
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body.next).toBeNull();
      expect(body.data).toHaveLength(1);
      const [issuer] = body.data;
      expect(issuer.issuer).toBe(idp.issuer);
      expect(issuer.configuration.issuer).toBe(idp.issuer);
      expect(issuer.configuration.token_endpoint).toBe(idp.tokenEndpoint);
      expect(issuer.keys.length).toBeGreaterThan(0);
      for (const key of issuer.keys) for (const member of ["d", "p", "q", "dp", "dq", "qi", "k"]) expect(key).not.toHaveProperty(member);
      expect(typeof issuer.updated_at).toBe("number");
      expect(typeof issuer.id).toBe("string");
    });

    it("shows one issuer by id or by its URL-encoded identifier", async () => {
      const [issuer] = (await (await fetch(`${gw.adminUrl}/openid-connect/issuers`)).json()).data;
      const byId = await (await fetch(`${gw.adminUrl}/openid-connect/issuers/${issuer.id}`)).json();
      expect(byId.issuer).toBe(idp.issuer);
      const byUrl = await fetch(`${gw.adminUrl}/openid-connect/issuers/${encodeURIComponent(idp.issuer)}`);
      expect(byUrl.status).toBe(200);
      expect((await byUrl.json()).id).toBe(issuer.id);
      expect((await fetch(`${gw.adminUrl}/openid-connect/issuers/nope`)).status).toBe(404);
    });

    it("forgets the issuers on DELETE and rediscovers on next use", async () => {
      const res = await fetch(`${gw.adminUrl}/openid-connect/issuers`, { method: "DELETE" });
      expect(res.status).toBe(204);
      const listed = (await (await fetch(`${gw.adminUrl}/openid-connect/issuers`)).json()).data[0];
      expect(listed.configuration).toBeNull();
      const before = (await idp.stats()).discovery;
      expect((await call(gw, serviceAuth)).status).toBe(200);
      expect((await idp.stats()).discovery).toBe(before + 1);
      const one = await fetch(`${gw.adminUrl}/openid-connect/issuers/${listed.id}`, { method: "DELETE" });
      expect(one.status).toBe(204);
    });
  });
});

describe("token lifetime", () => {
  it("gets a new token once the cached one expires", async () => {
    await idp.setAccessTokenTtl(2);
    try {
      const gw = await gateway();
      const auth = { headers: { authorization: basic(CLIENTS.ttl.id, CLIENTS.ttl.secret) } };
      const first = await call(gw, auth);
      expect(first.status).toBe(200);
      expect((await call(gw, auth)).upstream!.headers.authorization).toBe(first.upstream!.headers.authorization!);
      await Bun.sleep(2100);
      const later = await call(gw, auth);
      expect(later.status).toBe(200);
      expect(later.upstream!.headers.authorization).not.toBe(first.upstream!.headers.authorization!);
      expect(payload(later.upstream!.headers.authorization!.slice(7)).exp).toBeGreaterThan(
        payload(first.upstream!.headers.authorization!.slice(7)).exp,
      );
      expect(await tokenCalls(CLIENTS.ttl.id)).toBe(2);
    } finally {
      await idp.setAccessTokenTtl(300);
    }
  }, 15_000);
});

describe("when the IdP fails", () => {
  it("keeps serving a cached client (resurrected within cache_ttl_resurrect) while a new client fails fast", async () => {
    const gw = await gateway("cache_ttl_max = 1\ncache_ttl_resurrect = 60\ntimeout = 1000");
    expect((await call(gw, serviceAuth)).status).toBe(200);
    await idp.fail(0, { targets: ["all"] });
    try {
      // Fresh in the cache: the IdP is not needed at all.
      expect((await call(gw, serviceAuth)).status).toBe(200);
      await Bun.sleep(1100); // past the cache TTL, the token itself still valid for minutes
      const cached = await call(gw, serviceAuth);
      expect(cached.status).toBe(200);
      const line = await gw.waitForLog((l) => l.event === "http.request" && l.request_id === cached.requestId);
      expect(line.token_cache).toBe("resurrect");
      const started = performance.now();
      const fresh = await call(gw, { headers: { authorization: basic(CLIENTS.late.id, CLIENTS.late.secret) } });
      expect(fresh.status).toBe(503);
      expect(performance.now() - started).toBeLessThan(1000);
      expect(JSON.parse(fresh.text)).toEqual({ message: "The identity provider is unavailable" });
    } finally {
      await idp.normal();
    }
    expect((await call(gw, { headers: { authorization: basic(CLIENTS.late.id, CLIENTS.late.secret) } })).status).toBe(200);
  });

  it("answers 502 for an IdP error and 504 for a slow IdP, without echoing the IdP's body", async () => {
    const gw = await gateway("timeout = 500\ncache_tokens = false");
    await idp.fail(500, { count: 1 });
    const bad = await call(gw, serviceAuth);
    expect(bad.status).toBe(502);
    expect(bad.text).not.toContain("temporarily_unavailable");
    await idp.delay(1500, { count: 1 });
    const started = performance.now();
    const slow = await call(gw, serviceAuth);
    expect(slow.status).toBe(504);
    expect(performance.now() - started).toBeLessThan(1400);
    expect(JSON.parse(slow.text)).toEqual({ message: "The identity provider is timing out" });
  });

  it("refuses to use an issuer whose discovery names another issuer: 503, logged, not ready", async () => {
    const wrong = idp.issuer.replace("localhost", "127.0.0.1");
    const gw = await startGateway({ config: config().replace(`issuer = "${idp.issuer}"`, `issuer = "${wrong}"`) });
    gateways.push(gw);
    const r = await call(gw, serviceAuth);
    expect(r.status).toBe(503);
    const logged = await gw.waitForLog((l) => l.event === "oidc.issuer_unavailable");
    expect(logged.detail).toContain(`does not equal the configured 'issuer' "${wrong}"`);
    const ready = await fetch(`${gw.adminUrl}/status/ready`);
    if (ready.status !== 404) expect(ready.status).toBe(503);
  });
});

describe("the shipped gateway.toml", () => {
  it("runs the guide's two curl commands (ports and issuer moved to the test's)", async () => {
    const shipped = readFileSync(resolve(import.meta.dir, "../../gateway.toml"), "utf8");
    expect(shipped).toContain('issuer = "http://localhost:8080/realms/master"');
    const port = new URL(idp.issuer).port;
    const text = shipped
      .replace('"0.0.0.0:8000"', '"127.0.0.1:{{proxy}}"')
      .replace('"127.0.0.1:8001"', '"127.0.0.1:{{admin}}"')
      .replace("http://127.0.0.1:9000/anything", `${upstream.url}/anything`)
      .replace("http://localhost:8080/realms/master", `http://localhost:${port}/realms/master`);
    const gw = await startGateway({ config: text });
    gateways.push(gw);
    const issuers = await (await fetch(`${gw.adminUrl}/openid-connect/issuers`)).json();
    expect(issuers.data[0].configuration.issuer).toBe(idp.issuer);
    expect(issuers.data[0].keys.length).toBeGreaterThan(0);
    const first = await call(gw, serviceAuth);
    expect(first.status).toBe(200);
    const second = await call(gw, serviceAuth);
    expect(second.upstream!.headers.authorization).toBe(first.upstream!.headers.authorization!);
    expect((await gw.waitForLog((l) => l.event === "http.request" && l.request_id === second.requestId)).token_cache).toBe("hit");
  });
});

describe("settings a new user reaches for", () => {
  it("says why with display_errors and uses unauthorized_error_message", async () => {
    const gw = await gateway('display_errors = true\nunauthorized_error_message = "Who are you?"');
    const r = await call(gw, { headers: { authorization: basic("service", "wrong") } });
    expect(r.status).toBe(401);
    expect(JSON.parse(r.text)).toEqual({
      message: "Who are you?",
      error: "invalid_client",
      error_description: "the identity provider refused the client credentials",
    });
  });

  it("copies claims into upstream headers", async () => {
    const gw = await gateway('upstream_headers_claims = ["client_id", "aud"]\nupstream_headers_names = ["X-Client-Id", "X-Audience"]');
    const r = await call(gw, serviceAuth);
    expect(r.upstream!.headers["x-client-id"]).toBe("service");
    expect(r.upstream!.headers["x-audience"]).toBe("http://localhost:8000");
  });

  it("ignores the query when client_credentials_param_type lists only the header, as in Kong's guide", async () => {
    const gw = await gateway('client_credentials_param_type = ["header"]');
    expect((await call(gw, { path: `/openid-connect?client_id=service&client_secret=${SERVICE_SECRET}` })).status).toBe(401);
    expect((await call(gw, serviceAuth)).status).toBe(200);
  });
});

describe("on Deno", () => {
  it("runs the same flow from source", async () => {
    const gw = await gateway("", "deno");
    const first = await call(gw, { headers: { authorization: basic(CLIENTS.b.id, CLIENTS.b.secret) } });
    expect(first.status).toBe(200);
    expect(payload(first.upstream!.headers.authorization!.slice(7)).client_id).toBe(CLIENTS.b.id);
    const second = await call(gw, { headers: { authorization: basic(CLIENTS.b.id, CLIENTS.b.secret) } });
    expect(second.upstream!.headers.authorization).toBe(first.upstream!.headers.authorization!);
    const line = await gw.waitForLog((l) => l.event === "http.request" && l.request_id === second.requestId);
    expect(line.token_cache).toBe("hit");
  }, 30_000);
});

describe("latency", () => {
  it("adds little to a direct upstream call on the cached path (2000 sequential requests each)", async () => {
    const gw = await gateway();
    const N = 2000;
    const measure = async (url: string, init: RequestInit) => {
      for (let i = 0; i < 100; i++) await (await fetch(url, init)).arrayBuffer(); // warm up
      const times: number[] = [];
      for (let i = 0; i < N; i++) {
        const t = performance.now();
        const res = await fetch(url, init);
        await res.arrayBuffer();
        times.push(performance.now() - t);
        if (res.status !== 200) throw new Error(`status ${res.status}`);
      }
      times.sort((a, b) => a - b);
      return { p50: times[Math.floor(N * 0.5)]!, p99: times[Math.floor(N * 0.99)]! };
    };
    const plain = await startGateway({ config: simpleConfig(`${upstream.url}/anything`) });
    gateways.push(plain);
    const direct = await measure(`${upstream.url}/anything/openid-connect`, {});
    const proxied = await measure(`${plain.proxyUrl}/openid-connect`, {});
    const cached = await measure(`${gw.proxyUrl}/openid-connect`, serviceAuth);
    const fmt = (r: { p50: number; p99: number }) => `p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms`;
    console.log(
      `latency over ${N} sequential requests: direct upstream ${fmt(direct)}; gateway without plugin ${fmt(proxied)}; gateway with openid-connect, cached token ${fmt(cached)}`,
    );
    expect(cached.p50 - direct.p50).toBeLessThan(5);
  }, 60_000);
});
