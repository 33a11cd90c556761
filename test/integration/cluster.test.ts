/**
 * A fleet of two gateways behaves like one: gateway A (the compiled binary unless GATEWAY_RUNTIME
 * says otherwise) and gateway B (on Deno, so both runtimes speak to Redis) share one real
 * redis-server, and sit in front of the real IdP (oidc-provider) and the echo upstream.
 * Redis is killed and restarted for real.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { join } from "node:path";
import type { AuthorizationServer } from "oauth4webapi";
import { createCluster, type Cluster } from "../../src/cluster/index.ts";
import { clusterSchema } from "../../src/config/cluster.ts";
import type { KeyStore } from "../../src/keys/types.ts";
import { createLogger } from "../../src/log.ts";
import { createGatewayClient } from "../../src/oidc/client/client-auth.ts";
import { requestGrant } from "../../src/oidc/client/client-requests.ts";
import { createIdpFetch } from "../../src/oidc/client/outbound.ts";
import { bunRuntime } from "../../src/runtime/bun.ts";
import { makeProof, proofKey, type ProofKey } from "../support/dpop-proof.ts";
import { startGateway, type GatewayProcess, serverTable } from "../support/gateway-process.ts";
import { SERVICE_SECRET, startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { startRedis, type RedisProcess } from "../support/redis-process.ts";
import { tempFolders } from "../support/temp.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";
import { waitUntil } from "../support/wait.ts";

const SALT = "fleet-wide-cache-salt-0123456789";
const KEYS_SECRET = "fleet-wide-keys-secret-0123456789abcdef";
const ORIGIN = "https://api.example.com";
const CLIENTS = {
  shared: { id: "fleet-shared", secret: "fleet-shared-secret-0123456789" },
  burst: { id: "fleet-burst", secret: "fleet-burst-secret-0123456789" },
  load: { id: "fleet-load", secret: "fleet-load-secret-0123456789" },
  after: { id: "fleet-after", secret: "fleet-after-secret-0123456789" },
  down: { id: "fleet-down", secret: "fleet-down-secret-0123456789" },
  headers: { id: "fleet-headers", secret: "fleet-headers-secret-0123456789" },
} as const;
const SECRETS = [SERVICE_SECRET, "client-dpop-auth-secret", SALT, KEYS_SECRET, ...Object.values(CLIENTS).map((c) => c.secret)];

let redis: RedisProcess;
let idp: IdpProcess;
let upstream: EchoUpstream;
let a: GatewayProcess;
let b: GatewayProcess;
/** Every access token the upstream saw, to look for in Redis and in the logs. */
const tokensSeen = new Set<string>();
/** The JWKS file of the fleet member a case builds in this process; removed after the file. */
const memberFolder = tempFolders("fleet-member-");

function config(): string {
  return `${serverTable()}
[cluster]
strategy = "redis"
redis_url = "${redis.url}"
# Generous: on a busy machine a reply later than a short timeout leaves a node "unreachable"
# for a moment, and the token it fetches then is not shared (the last case counts IdP calls).
command_timeout = 2000
keys_secret = "${KEYS_SECRET}"

[keys]
jwks_file = "{{dir}}/gateway-jwks.json"

[[services]]
name = "echo"
url = "${upstream.url}/anything"
read_timeout = 5000

[[routes]]
name = "cc"
service = "echo"
paths = ["/cc"]

[[routes]]
name = "cc-raw"
service = "echo"
paths = ["/cc-raw"]

[[routes]]
name = "dpop"
service = "echo"
paths = ["/dpop"]

[[plugins]]
name = "openid-connect"
route = "cc"
[plugins.config]
issuer = "${idp.issuer}"
auth_methods = ["client_credentials"]
cache_tokens_salt = "${SALT}"

# Same salt and token request as "cc", so the same shared entries, but other upstream headers.
[[plugins]]
name = "openid-connect"
route = "cc-raw"
[plugins.config]
issuer = "${idp.issuer}"
auth_methods = ["client_credentials"]
cache_tokens_salt = "${SALT}"
upstream_access_token_header = "x-access-token"
upstream_headers_claims = ["client_id"]
upstream_headers_names = ["X-Client"]

[[plugins]]
name = "openid-connect"
route = "dpop"
[plugins.config]
issuer = "${idp.issuer}"
auth_methods = ["bearer"]
cache_tokens_salt = "${SALT}"
proof_of_possession_dpop = "strict"
dpop_public_origins = ["${ORIGIN}"]
display_errors = true
`;
}

beforeAll(async () => {
  redis = await startRedis();
  upstream = startEchoUpstream();
  // clientJwksMaxAge 0: like a real IdP after its refetch interval, an unknown kid makes it download the client's JWKS again.
  idp = await startIdpProcess({
    options: { clientJwksMaxAge: 0, extraClients: Object.values(CLIENTS).map((c) => ({ client_id: c.id, client_secret: c.secret })) },
  });
  [a, b] = await Promise.all([startGateway({ config: config() }), startGateway({ config: config(), runtime: "deno" })]);
  await Promise.all([a, b].map((gw) => gw.waitForLog((l) => l.event === "cluster.connected")));
}, 60_000);

afterAll(async () => {
  for (const gw of [a, b]) {
    if (!gw) continue;
    const log = gw.output.join("\n");
    for (const secret of SECRETS) expect(log).not.toContain(secret);
    for (const token of tokensSeen) expect(log).not.toContain(token.slice(-40));
    await gw.stop();
  }
  await idp?.stop();
  await upstream?.stop();
  await redis?.stop();
});

const basic = (c: { id: string; secret: string }) => ({ authorization: `Basic ${btoa(`${c.id}:${c.secret}`)}` });
const tokenCalls = async (clientId: string) => (await idp.stats()).token.byClient[clientId] ?? 0;

async function call(gw: GatewayProcess, path: string, headers: Record<string, string>) {
  const res = await fetch(`${gw.proxyUrl}${path}`, { headers });
  const text = await res.text();
  let auth: string | undefined;
  let upstreamHeaders: Record<string, string> = {};
  if (res.status === 200) {
    upstreamHeaders = (JSON.parse(text) as { headers: Record<string, string> }).headers;
    auth = upstreamHeaders.authorization;
    if (auth?.startsWith("Bearer ")) tokensSeen.add(auth.slice(7));
    if (upstreamHeaders["x-access-token"]) tokensSeen.add(upstreamHeaders["x-access-token"]);
  }
  return { status: res.status, text, auth, headers: upstreamHeaders };
}

const metric = async (gw: GatewayProcess, name: string) => {
  const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? undefined : Number(line.split(" ").pop());
};

describe("two gateways sharing one Redis", () => {
  it("serve a token fetched through A from B, without a call to the token endpoint, and B's access log says shared", async () => {
    const first = await call(a, "/cc", basic(CLIENTS.shared));
    expect(first.status).toBe(200);
    expect(await tokenCalls(CLIENTS.shared.id)).toBe(1);
    const second = await call(b, "/cc", basic(CLIENTS.shared));
    expect(second.status).toBe(200);
    expect(second.auth).toBe(first.auth!);
    expect(await tokenCalls(CLIENTS.shared.id)).toBe(1);
    const logged = async (gw: GatewayProcess) =>
      (await gw.waitForLog((l) => l.event === "http.request" && l.path === "/cc" && l.token_cache !== undefined)).token_cache;
    expect(await logged(a)).toBe("miss"); // A went to the IdP
    expect(await logged(b)).toBe("shared"); // B found it in the fleet's cache
  });

  it("make one token endpoint call for 100 concurrent cold requests split over A and B", async () => {
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => call(i % 2 ? a : b, "/cc", basic(CLIENTS.burst))));
    expect(results.map((r) => r.status)).toEqual(Array(100).fill(200));
    expect(new Set(results.map((r) => r.auth)).size).toBe(1);
    expect(await tokenCalls(CLIENTS.burst.id)).toBe(1);
  });

  it("give each route its own upstream headers for a token shared in Redis (a route's header settings never leak into another's)", async () => {
    const client = basic(CLIENTS.headers);
    const raw = await call(a, "/cc-raw", client);
    expect(raw.status).toBe(200);
    const token = raw.headers["x-access-token"]!;
    expect(token.split(".")).toHaveLength(3);
    expect(raw.headers["x-client"]).toBe(CLIENTS.headers.id);
    expect(raw.auth).toBeUndefined();
    // The default route on both gateways: the same token from Redis, as `Authorization: Bearer`, without X-Client.
    for (const gw of [a, b]) {
      const plain = await call(gw, "/cc", client);
      expect(plain.status).toBe(200);
      expect(plain.auth).toBe(`Bearer ${token}`);
      expect(plain.headers["x-client"]).toBeUndefined();
      expect(plain.headers["x-access-token"]).toBeUndefined();
    }
    const rawOnB = await call(b, "/cc-raw", client);
    expect(rawOnB.headers["x-access-token"]).toBe(token);
    expect(rawOnB.headers["x-client"]).toBe(CLIENTS.headers.id);
    expect(await tokenCalls(CLIENTS.headers.id)).toBe(1);
  });

  it("keep token values unreadable in Redis: no token, no JWT, no client id or secret in keys or values", async () => {
    const keys = redis.cli(["--scan", "--pattern", "*"]).split("\n").filter(Boolean);
    const tokenKeys = keys.filter((k) => k.startsWith("oidc-gateway:tokens:client_credentials:"));
    expect(tokenKeys.length).toBeGreaterThanOrEqual(2);
    expect(tokensSeen.size).toBeGreaterThanOrEqual(2);
    for (const key of keys) {
      for (const c of Object.values(CLIENTS)) {
        expect(key).not.toContain(c.id);
        expect(key).not.toContain(c.secret);
      }
      const value = redis.cli(["--no-raw", "GET", key]);
      expect(value).not.toContain("eyJ");
      for (const token of tokensSeen) expect(value).not.toContain(token.split(".")[1]!.slice(0, 24));
      for (const secret of SECRETS) expect(value).not.toContain(secret);
    }
  });

  it("refuse on B a DPoP proof that A accepted (and accept a fresh one on B)", async () => {
    const key: ProofKey = await proofKey();
    const { access_token: token, token_type } = await idp.token("client-dpop-auth", "client-dpop-auth-secret", {
      dpop: await makeProof({ key, method: "POST", url: idp.tokenEndpoint }),
    });
    expect(token_type).toBe("DPoP");
    tokensSeen.add(token);
    const proof = await makeProof({ key, url: `${ORIGIN}/dpop`, accessToken: token });
    const viaA = await call(a, "/dpop", { authorization: `DPoP ${token}`, dpop: proof });
    expect(viaA.status).toBe(200);
    const viaB = await call(b, "/dpop", { authorization: `DPoP ${token}`, dpop: proof });
    expect(viaB.status).toBe(401);
    expect(JSON.parse(viaB.text).error_description).toBe("the proof was already used ('jti' replayed)");
    const fresh = await call(b, "/dpop", {
      authorization: `DPoP ${token}`,
      dpop: await makeProof({ key, url: `${ORIGIN}/dpop`, accessToken: token }),
    });
    expect(fresh.status).toBe(200);
  });

  it("publish the same signing keys, and a rotation on A reaches B's JWKS within a second", async () => {
    const jwks = async (gw: GatewayProcess) => (await (await fetch(`${gw.adminUrl}/openid-connect/jwks`)).json()) as { keys: { kid: string }[] };
    const before = await jwks(a);
    expect(before.keys.length).toBeGreaterThan(0);
    expect(await jwks(b)).toEqual(before);
    expect((await fetch(`${a.adminUrl}/openid-connect/jwks`, { method: "DELETE" })).status).toBe(204);
    const rotated = await jwks(a);
    const started = Date.now();
    await waitUntil("B to publish A's rotation", async () => JSON.stringify(await jwks(b)) === JSON.stringify(rotated), 1000);
    expect(Date.now() - started).toBeLessThan(1000);
    // The new keys first, the retired ones still published for the grace period.
    expect(rotated.keys.map((k) => k.kid)).toEqual(expect.arrayContaining(before.keys.map((k) => k.kid)));
    expect(rotated.keys[0]!.kid).not.toBe(before.keys[0]!.kid);
  });

  it("sign private_key_jwt assertions with the fleet's previous key after a rotation on A until B's JWKS is fetched, then with the new key, which the IdP verifies with B's JWKS", async () => {
    // The IdP knows the fleet as one client whose keys are at gateway B's JWKS URL.
    await idp.addClient({
      client_id: "fleet-pkjwt",
      token_endpoint_auth_method: "private_key_jwt",
      jwks_uri: `${b.adminUrl}/openid-connect/jwks`,
      grant_types: ["client_credentials"],
    });
    // A third member of the fleet signs here (until a plugin method signs through a gateway
    // process): same Redis, same keys_secret, so the same current key as A and B.
    const config = clusterSchema().parse({ strategy: "redis", redis_url: redis.url, keys_secret: KEYS_SECRET });
    const member: Cluster = createCluster(config, { log: createLogger("error", () => {}) })!;
    await member.link.ready(2000);
    const keys: KeyStore = (await member.keyStore(bunRuntime, {
      jwks_file: join(memberFolder(), "jwks.json"),
      rotation_grace: 3600,
      rotation_signing_delay: 60,
    }))!;
    try {
      const fetchIdp = createIdpFetch({ runtime: bunRuntime, trustedCertificates: [] }, { timeout: 5000, sslVerify: true });
      const as = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as AuthorizationServer;
      const client = await createGatewayClient(
        { clientId: "fleet-pkjwt", methods: ["private_key_jwt"], alg: "ES256", tlsVerify: true, assertionAudience: "issuer", timeout: 5000 },
        { ctx: { runtime: bunRuntime, trustedCertificates: [], keys }, fetch: fetchIdp, where: "test" },
      );
      const grant = () => requestGrant(client.call(as, "token_endpoint"), { type: "client_credentials" }, { allowHttp: true, timeout: 5000 });
      expect((await grant()).access_token).toBeTruthy();
      // That grant made the IdP fetch B's JWKS, which ends the previous rotation's signing delay for
      // the fleet, asynchronously: rotate again only once the member signs with B's current key.
      const currentOfB = async () =>
        ((await (await fetch(`${b.adminUrl}/openid-connect/jwks`)).json()) as { keys: { kid: string; alg?: string }[] }).keys.find(
          (k) => k.alg === "ES256",
        )?.kid;
      await waitUntil(
        "the member to sign with the fleet's current key",
        async () => (await keys.signingKey({ alg: "ES256" })).kid === (await currentOfB()),
      );
      const before = (await keys.signingKey({ alg: "ES256" })).kid;

      const fetchesBefore = (await idp.stats()).clientJwksFetches?.["fleet-pkjwt"] ?? 0;
      expect((await fetch(`${a.adminUrl}/openid-connect/jwks`, { method: "DELETE" })).status).toBe(204);
      // The previous key signs until the published JWKS is fetched after the rotation, on any node.
      // A fetch answered before the rotation (the grant's, or this test's, still being handled by
      // B) does not end it: that JWKS lacks the new keys.
      await Bun.sleep(700);
      expect((await keys.signingKey({ alg: "ES256" })).kid).toBe(before);
      expect((await idp.stats()).clientJwksFetches?.["fleet-pkjwt"] ?? 0).toBe(fetchesBefore);
      expect((await fetch(`${b.adminUrl}/openid-connect/jwks`)).status).toBe(200);
      await waitUntil("the fleet to sign with the new key", async () => (await keys.signingKey({ alg: "ES256" })).kid !== before);
      const after = (await keys.signingKey({ alg: "ES256" })).kid;
      const published = (await (await fetch(`${b.adminUrl}/openid-connect/jwks`)).json()) as { keys: { kid: string }[] };
      expect(published.keys.map((k) => k.kid)).toContain(after);
      // The IdP meets an unknown kid, refetches B's JWKS, and accepts the assertion.
      const jwksFetches = (await idp.stats()).clientJwksFetches?.["fleet-pkjwt"] ?? 0;
      expect((await grant()).access_token).toBeTruthy();
      expect((await idp.stats()).clientJwksFetches?.["fleet-pkjwt"] ?? 0).toBeGreaterThan(jwksFetches);
    } finally {
      keys.close();
      await member.close();
    }
  });

  it("report the link as healthy: /status/ready says ready without a degraded reason, and the gauge is 0", async () => {
    for (const gw of [a, b]) {
      expect(await (await fetch(`${gw.adminUrl}/status/ready`)).json()).toEqual({ ready: true });
      expect(await metric(gw, "gateway_cluster_degraded")).toBe(0);
    }
  });
});

describe("the fleet while Redis goes away and comes back", () => {
  it("answers every request for cached clients while Redis is killed mid-load, then shares again once it is back", async () => {
    // Warm both local caches (the second through the fleet's entry).
    expect((await call(a, "/cc", basic(CLIENTS.load))).status).toBe(200);
    expect((await call(b, "/cc", basic(CLIENTS.load))).status).toBe(200);

    const statuses: number[] = [];
    let running = true;
    const worker = async (gw: GatewayProcess) => {
      while (running) statuses.push((await call(gw, "/cc", basic(CLIENTS.load))).status);
    };
    const load = Promise.all([a, a, b, b].map(worker));
    await Bun.sleep(300);
    await redis.kill();
    await Promise.all([a, b].map((gw) => gw.waitForLog((l) => l.event === "cluster.degraded" && l.reason !== "not connected yet")));
    await Bun.sleep(500);

    // Degraded, not unready: the node still serves.
    for (const gw of [a, b]) {
      const ready = await fetch(`${gw.adminUrl}/status/ready`);
      expect(ready.status).toBe(200);
      const body = (await ready.json()) as { ready: boolean; degraded?: string[] };
      expect(body.ready).toBe(true);
      expect(body.degraded?.[0]).toContain("unreachable");
      expect(await metric(gw, "gateway_cluster_degraded")).toBe(1);
    }
    // A client nobody has cached yet is served too, from the IdP directly.
    expect((await call(a, "/cc", basic(CLIENTS.down))).status).toBe(200);

    await redis.start();
    await Promise.all([a, b].map((gw) => gw.waitForLog((l) => l.event === "cluster.recovered")));
    await Bun.sleep(200);
    // At least 100 answers in all, however slow the machine: the load ends only after Redis is back.
    await waitUntil("100 answers under load", () => statuses.length > 100);
    running = false;
    await load;
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    for (const gw of [a, b]) expect(await metric(gw, "gateway_cluster_degraded")).toBe(0);

    // Shared again: a token fetched through B is served by A without a token endpoint call.
    expect((await call(b, "/cc", basic(CLIENTS.after))).status).toBe(200);
    expect((await call(a, "/cc", basic(CLIENTS.after))).status).toBe(200);
    expect(await tokenCalls(CLIENTS.after.id)).toBe(1);
  }, 30_000);
});
