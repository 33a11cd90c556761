// @ts-check
/**
 * Smoke test of the test IdP: `node test/support/idp/smoke.mjs`
 * Prints "idp smoke: PASS (...)" and exits 0, or prints the failure and exits 1.
 * Generates dev certificates in $IDP_SMOKE_CERTS (default /tmp/idp-certs) via scripts/make-certs.sh.
 */

import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

import { SignJWT, calculateJwkThumbprint, createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from "jose";

import { startIdp } from "./provider.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../../..");
const certDir = process.env.IDP_SMOKE_CERTS ?? "/tmp/idp-certs";

/** @type {(() => Promise<void>)[]} */
const cleanups = [];
let checks = 0;
/** @param {string} name @param {() => Promise<void>} fn */
async function check(name, fn) {
  try {
    await fn();
    checks += 1;
  } catch (err) {
    /** @type {any} */ (err).message = `${name}: ${/** @type {Error} */ (err).message}`;
    throw err;
  }
}

const basic = (/** @type {string} */ id, /** @type {string} */ secret) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;
const form = (/** @type {Record<string, string>} */ o) => new URLSearchParams(o).toString();
const isJwt = (/** @type {string} */ t) => t.split(".").length === 3;

/**
 * @param {string} url
 * @param {{ headers?: Record<string, string>, body?: string, method?: string }} [init]
 */
async function post(url, init = {}) {
  const res = await fetch(url, {
    method: init.method ?? "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...init.headers },
    body: init.body,
  });
  const text = await res.text();
  /** @type {any} */
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

/**
 * HTTPS request with an optional client certificate (fresh connection each time).
 * @param {string} url
 * @param {{ method?: string, headers?: Record<string, string>, body?: string, cert?: string, key?: string }} opts
 * @returns {Promise<{ status: number, json: any }>}
 */
function httpsRequest(url, opts = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: opts.method ?? (opts.body ? "POST" : "GET"),
        headers: {
          ...(opts.body ? { "content-type": "application/x-www-form-urlencoded" } : {}),
          ...opts.headers,
        },
        ca: fs.readFileSync(path.join(certDir, "ca.crt")),
        ...(opts.cert ? { cert: fs.readFileSync(opts.cert), key: fs.readFileSync(/** @type {string} */ (opts.key)) } : {}),
        agent: false,
      },
      (res) => {
        /** @type {Buffer[]} */
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          /** @type {any} */
          let json;
          try {
            json = JSON.parse(text);
          } catch {
            json = text;
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    if (opts.body) req.write(opts.body);
    req.end();
  });
}

/**
 * Key pair via PEM + re-import (see generateSigningJwk in provider.mjs: exporting a JWK
 * from a freshly generated KeyObject can deadlock on Node 20).
 * @param {'rsa'|'ec'} type
 */
function keyPair(type) {
  const privateKeyEncoding = /** @type {const} */ ({ type: "pkcs8", format: "pem" });
  const publicKeyEncoding = /** @type {const} */ ({ type: "spki", format: "pem" });
  const pair =
    type === "rsa"
      ? crypto.generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding, publicKeyEncoding })
      : crypto.generateKeyPairSync("ec", { namedCurve: "P-256", privateKeyEncoding, publicKeyEncoding });
  return {
    privateKey: crypto.createPrivateKey(pair.privateKey),
    publicJwk: crypto.createPublicKey(pair.publicKey).export({ format: "jwk" }),
  };
}

/** A loopback JWKS server standing in for Kong's /openid-connect/jwks. */
async function startClientJwksServer() {
  const state = {
    /** @type {{ kid: string, privateKey: crypto.KeyObject, publicJwk: Record<string, any> }[]} */
    keys: [],
    hits: 0,
  };
  const addKey = async () => {
    const { privateKey, publicJwk: jwk } = keyPair("rsa");
    const kid = `kong-${crypto.randomBytes(4).toString("hex")}`;
    const publicJwk = { ...jwk, kid, alg: "RS256", use: "sig" };
    state.keys.unshift({ kid, privateKey, publicJwk });
    return state.keys[0];
  };
  await addKey();
  const server = http.createServer((_req, res) => {
    state.hits += 1;
    const body = JSON.stringify({ keys: state.keys.map((k) => k.publicJwk) });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(body);
  });
  await new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve(undefined));
  });
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  cleanups.push(
    () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return {
    url: `http://127.0.0.1:${port}/openid-connect/jwks`,
    state,
    addKey,
    /** @param {string} aud */
    async assertion(aud) {
      const [current] = state.keys;
      assert.ok(current);
      return new SignJWT({ jti: crypto.randomUUID() })
        .setProtectedHeader({ alg: "RS256", kid: current.kid })
        .setIssuer("kong")
        .setSubject("kong")
        .setAudience(aud)
        .setIssuedAt()
        .setExpirationTime("60s")
        .sign(current.privateKey);
    },
  };
}

async function main() {
  execFileSync("bash", [path.join(repo, "scripts/make-certs.sh"), certDir], { stdio: ["ignore", "ignore", "inherit"] });

  // ------------------------------------------------------------------ HTTP IdP
  const kongJwks = await startClientJwksServer();
  const idp = await startIdp({
    kongJwksUri: kongJwks.url,
    extraClients: [{ client_id: "svc-1", client_secret: "svc-1-secret" }],
  });
  cleanups.push(idp.close);
  const { issuer } = idp;
  assert.match(issuer, /^http:\/\/localhost:\d+\/realms\/master$/);

  /** @type {any} */
  let discovery;
  await check("discovery", async () => {
    const res = await fetch(`${issuer}/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    discovery = await res.json();
    assert.equal(discovery.issuer, issuer);
    assert.equal(discovery.token_endpoint, idp.tokenEndpoint);
    assert.ok(discovery.grant_types_supported.includes("password"));
    assert.ok(discovery.token_endpoint_auth_methods_supported.includes("tls_client_auth"));
    const notFound = await fetch(`${idp.url}/nope`);
    assert.equal(notFound.status, 404);
  });
  // cooldownDuration 0: the key-rotation check below adds a kid jose has not seen yet
  const remoteJwks = createRemoteJWKSet(new URL(discovery.jwks_uri), { cooldownDuration: 0 });
  const verifyAt = (/** @type {string} */ token) =>
    jwtVerify(token, remoteJwks, {
      issuer,
      audience: "http://localhost:8000",
      typ: "at+jwt",
    });

  await check("client_credentials (service, client_secret_basic) -> JWT", async () => {
    const res = await post(discovery.token_endpoint, {
      headers: { authorization: basic("service", "cf4c655a-0622-4ce6-a0de-d3353ef0b714") },
      body: form({ grant_type: "client_credentials", scope: "openid api" }),
    });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(res.json.token_type, "Bearer");
    assert.equal(res.json.expires_in, 300);
    assert.ok(isJwt(res.json.access_token));
    const { payload, protectedHeader } = await verifyAt(res.json.access_token);
    assert.equal(protectedHeader.alg, "RS256");
    assert.equal(payload.iss, issuer);
    assert.equal(payload.client_id, "service");
    assert.equal(payload.sub, "service");
    assert.equal(payload.scope, "openid api");
  });

  await check("wrong secret -> 401 invalid_client", async () => {
    const res = await post(idp.tokenEndpoint, {
      headers: { authorization: basic("service", "wrong") },
      body: form({ grant_type: "client_credentials" }),
    });
    assert.equal(res.status, 401);
    assert.equal(res.json.error, "invalid_client");
  });

  await check("extra client svc-1", async () => {
    const res = await post(idp.tokenEndpoint, {
      headers: { authorization: basic("svc-1", "svc-1-secret") },
      body: form({ grant_type: "client_credentials" }),
    });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal((await verifyAt(res.json.access_token)).payload.client_id, "svc-1");
  });

  await check("runtime client via /__control/clients", async () => {
    const reg = await fetch(`${idp.url}/__control/clients`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ client_id: "svc-rt", client_secret: "svc-rt-secret" }),
    });
    assert.equal(reg.status, 201, await reg.clone().text());
    const res = await post(idp.tokenEndpoint, {
      headers: { authorization: basic("svc-rt", "svc-rt-secret") },
      body: form({ grant_type: "client_credentials" }),
    });
    assert.equal(res.status, 200, JSON.stringify(res.json));
  });

  await check("password grant via kong (private_key_jwt, loopback jwks_uri)", async () => {
    const res = await post(idp.tokenEndpoint, {
      body: form({
        grant_type: "password",
        username: "john",
        password: "doe",
        scope: "openid profile",
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion: await kongJwks.assertion(issuer),
      }),
    });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const { payload } = await verifyAt(res.json.access_token);
    assert.equal(payload.sub, "john");
    assert.equal(payload.client_id, "kong");
    assert.equal(payload.preferred_username, "john");
    assert.equal(payload.scope, "openid profile");

    const bad = await post(idp.tokenEndpoint, {
      body: form({
        grant_type: "password",
        username: "john",
        password: "nope",
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion: await kongJwks.assertion(idp.tokenEndpoint),
      }),
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error, "invalid_grant");

    const cc = await post(idp.tokenEndpoint, {
      body: form({
        grant_type: "client_credentials",
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion: await kongJwks.assertion(issuer),
      }),
    });
    assert.equal(cc.status, 200, JSON.stringify(cc.json));
    assert.equal(idp.stats().clientJwksFetches.kong, 1, "jwks_uri fetched once (cached)");
    assert.equal(kongJwks.state.hits, 1);
  });

  await check("client jwks refresh (kong key rotation)", async () => {
    await kongJwks.addKey(); // kong now signs with an unknown kid
    const assertion = async () =>
      post(idp.tokenEndpoint, {
        body: form({
          grant_type: "client_credentials",
          client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
          client_assertion: await kongJwks.assertion(issuer),
        }),
      });
    const refused = await assertion();
    assert.equal(refused.status, 401, "cached jwks is still fresh -> unknown kid refused");
    const r = await post(`${idp.url}/__control/refresh-client-jwks?client_id=kong`);
    assert.equal(r.status, 200);
    const ok = await assertion();
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(idp.stats().clientJwksFetches.kong, 2);
    assert.equal(kongJwks.state.hits, 2);
  });

  await check("IdP key rotation", async () => {
    const before = await (await fetch(idp.jwksUri)).json();
    const res = await post(`${idp.url}/__control/rotate-keys`);
    assert.equal(res.status, 200);
    const { kid } = res.json;
    const after = await (await fetch(idp.jwksUri)).json();
    assert.equal(after.keys.length, before.keys.length + 1);
    assert.ok(after.keys.some((/** @type {any} */ k) => k.kid === kid));
    assert.ok(
      after.keys.every((/** @type {any} */ k) => k.d === undefined),
      "no private parts published",
    );
    const tok = await post(idp.tokenEndpoint, {
      headers: { authorization: basic("service", idp.secrets.service ?? "") },
      body: form({ grant_type: "client_credentials" }),
    });
    assert.equal(tok.status, 200);
    assert.equal(decodeProtectedHeader(tok.json.access_token).kid, kid);
    await jwtVerify(tok.json.access_token, createLocalJWKSet(after), { issuer });
  });

  await check("DPoP (client-dpop-auth)", async () => {
    const { privateKey, publicJwk: jwk } = keyPair("ec");
    const proof = await new SignJWT({ htm: "POST", htu: idp.tokenEndpoint, jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk })
      .setIssuedAt()
      .sign(privateKey);
    const res = await post(idp.tokenEndpoint, {
      headers: { authorization: basic("client-dpop-auth", "client-dpop-auth-secret"), dpop: proof },
      body: form({ grant_type: "client_credentials" }),
    });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(res.json.token_type, "DPoP");
    const { payload } = await verifyAt(res.json.access_token);
    assert.equal(/** @type {any} */ (payload.cnf).jkt, await calculateJwkThumbprint(jwk));

    const without = await post(idp.tokenEndpoint, {
      headers: { authorization: basic("client-dpop-auth", "client-dpop-auth-secret") },
      body: form({ grant_type: "client_credentials" }),
    });
    assert.equal(without.status, 400);
    assert.equal(without.json.error, "invalid_grant");
  });

  await check("opaque token + introspection", async () => {
    const res = await post(idp.tokenEndpoint, {
      headers: { authorization: basic("opaque", "opaque-secret") },
      body: form({ grant_type: "client_credentials", scope: "api" }),
    });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.ok(!isJwt(res.json.access_token));
    const intro = await post(discovery.introspection_endpoint, {
      headers: { authorization: basic("opaque", "opaque-secret") },
      body: form({ token: res.json.access_token }),
    });
    assert.equal(intro.status, 200);
    assert.equal(intro.json.active, true);
    assert.equal(intro.json.client_id, "opaque");
    assert.equal(intro.json.scope, "api");
    assert.equal(intro.json.iss, issuer);
    assert.equal(intro.json.aud, "http://localhost:8000");
    const garbage = await post(discovery.introspection_endpoint, {
      headers: { authorization: basic("service", idp.secrets.service ?? "") },
      body: form({ token: "not-a-token" }),
    });
    assert.equal(garbage.json.active, false);
    const revoke = await post(discovery.revocation_endpoint, {
      headers: { authorization: basic("opaque", "opaque-secret") },
      body: form({ token: res.json.access_token }),
    });
    assert.equal(revoke.status, 200);
    const after = await post(discovery.introspection_endpoint, {
      headers: { authorization: basic("opaque", "opaque-secret") },
      body: form({ token: res.json.access_token }),
    });
    assert.equal(after.json.active, false);
  });

  await check("fault injection", async () => {
    const svc = () =>
      post(idp.tokenEndpoint, {
        headers: { authorization: basic("service", idp.secrets.service ?? "") },
        body: form({ grant_type: "client_credentials" }),
      });
    assert.equal((await post(`${idp.url}/__control/fail?status=503&count=1`)).status, 200);
    const failed = await svc();
    assert.equal(failed.status, 503);
    assert.equal(failed.json.error, "temporarily_unavailable");
    assert.equal((await svc()).status, 200);
    await post(`${idp.url}/__control/delay?ms=300`);
    const t0 = Date.now();
    assert.equal((await svc()).status, 200);
    assert.ok(Date.now() - t0 >= 290, "delayed");
    await post(`${idp.url}/__control/fail?status=0&count=1`);
    await assert.rejects(svc(), "dropped connection");
    await post(`${idp.url}/__control/normal`);
    const t1 = Date.now();
    assert.equal((await svc()).status, 200);
    assert.ok(Date.now() - t1 < 250, "not delayed after normal");
  });

  await check("stats", async () => {
    const s = await (await fetch(`${idp.url}/__control/stats`)).json();
    assert.deepEqual(s.token.byClient, {
      service: 8,
      "svc-1": 1,
      "svc-rt": 1,
      kong: 5,
      "client-dpop-auth": 2,
      opaque: 1,
    });
    assert.equal(s.token.total, 18);
    assert.deepEqual(s.token.byGrant, { client_credentials: 16, password: 2 });
    assert.equal(s.token.byStatus["200"], 12);
    assert.equal(s.token.byStatus["503"], 1);
    assert.equal(s.discovery, 1);
    assert.equal(s.introspection, 3);
    assert.equal(s.revocation, 1);
    assert.ok(s.jwks >= 3, `jwks ${s.jwks}`);
    assert.deepEqual(s.clientJwksFetches, { kong: 2 });
    assert.equal((await post(`${idp.url}/__control/reset-stats`)).status, 200);
    assert.equal(idp.stats().token.total, 0);
  });

  // -------------------------------------------- clientJwksMaxAge (short cache)
  await check("clientJwksMaxAge=0 refetches on unknown kid", async () => {
    const jwksSrv = await startClientJwksServer();
    const idp2 = await startIdp({ kongJwksUri: jwksSrv.url, clientJwksMaxAge: 0, issuerHost: "127.0.0.1" });
    cleanups.push(idp2.close);
    assert.match(idp2.issuer, /^http:\/\/127\.0\.0\.1:\d+\/realms\/master$/);
    const cc = async () =>
      post(idp2.tokenEndpoint, {
        body: form({
          grant_type: "client_credentials",
          client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
          client_assertion: await jwksSrv.assertion(idp2.issuer),
        }),
      });
    assert.equal((await cc()).status, 200);
    assert.equal((await cc()).status, 200);
    assert.equal(jwksSrv.state.hits, 1, "known kid: no refetch");
    await jwksSrv.addKey();
    assert.equal((await cc()).status, 200);
    assert.equal(jwksSrv.state.hits, 2);
    assert.equal(idp2.stats().clientJwksFetches.kong, 2);
  });

  // ------------------------------------------------------------- HTTPS / mTLS IdP
  const c = (/** @type {string} */ name) => path.join(certDir, name);
  const idps = await startIdp({
    tls: { cert: c("gateway.crt"), key: c("gateway.key"), ca: c("ca.crt") },
  });
  cleanups.push(idps.close);
  assert.match(idps.issuer, /^https:\/\/localhost:\d+\/realms\/master$/);

  await check("https discovery + mtls_endpoint_aliases", async () => {
    const res = await httpsRequest(idps.discoveryUrl);
    assert.equal(res.status, 200);
    assert.equal(res.json.issuer, idps.issuer);
    assert.equal(res.json.mtls_endpoint_aliases.token_endpoint, idps.tokenEndpoint);
  });
  const httpsJwks = createLocalJWKSet((await httpsRequest(idps.jwksUri)).json);

  await check("tls_client_auth with client.crt", async () => {
    const res = await httpsRequest(idps.tokenEndpoint, {
      body: form({ grant_type: "client_credentials", client_id: "client-tls-auth" }),
      cert: c("client.crt"),
      key: c("client.key"),
    });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const { payload } = await jwtVerify(res.json.access_token, httpsJwks, { issuer: idps.issuer });
    assert.equal(payload.client_id, "client-tls-auth");
  });

  await check("tls_client_auth refused with other-client.crt / no cert", async () => {
    const other = await httpsRequest(idps.tokenEndpoint, {
      body: form({ grant_type: "client_credentials", client_id: "client-tls-auth" }),
      cert: c("other-client.crt"),
      key: c("other-client.key"),
    });
    assert.equal(other.status, 401);
    assert.equal(other.json.error, "invalid_client");
    const none = await httpsRequest(idps.tokenEndpoint, {
      body: form({ grant_type: "client_credentials", client_id: "client-tls-auth" }),
    });
    assert.equal(none.status, 401);
  });

  await check("cert-bound token over mTLS", async () => {
    const res = await httpsRequest(idps.tokenEndpoint, {
      headers: { authorization: basic("cert-bound", "cert-bound-secret") },
      body: form({ grant_type: "client_credentials" }),
      cert: c("client.crt"),
      key: c("client.key"),
    });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const { payload } = await jwtVerify(res.json.access_token, httpsJwks, { issuer: idps.issuer });
    const der = new crypto.X509Certificate(fs.readFileSync(c("client.crt"))).raw;
    const expected = crypto.createHash("sha256").update(der).digest("base64url");
    assert.equal(/** @type {any} */ (payload.cnf)["x5t#S256"], expected);

    const noCert = await httpsRequest(idps.tokenEndpoint, {
      headers: { authorization: basic("cert-bound", "cert-bound-secret") },
      body: form({ grant_type: "client_credentials" }),
    });
    assert.equal(noCert.status, 400);
    assert.equal(noCert.json.error, "invalid_grant");
  });

  await check("self_signed_tls_client_auth", async () => {
    const ok = await httpsRequest(idps.tokenEndpoint, {
      body: form({ grant_type: "client_credentials", client_id: "client-self-signed" }),
      cert: c("self-signed-client.crt"),
      key: c("self-signed-client.key"),
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    const wrong = await httpsRequest(idps.tokenEndpoint, {
      body: form({ grant_type: "client_credentials", client_id: "client-self-signed" }),
      cert: c("client.crt"),
      key: c("client.key"),
    });
    assert.equal(wrong.status, 401);
  });

  await check("https stats", async () => {
    const s = idps.stats();
    assert.equal(s.token.total, 7);
    assert.deepEqual(s.token.byClient, { "client-tls-auth": 3, "cert-bound": 2, "client-self-signed": 2 });
  });
}

let exitCode = 0;
try {
  await main();
  process.stdout.write(`idp smoke: PASS (${checks} checks)\n`);
} catch (err) {
  process.stderr.write(`idp smoke: FAIL ${/** @type {Error} */ (err)?.stack ?? err}\n`);
  exitCode = 1;
} finally {
  for (const fn of cleanups.reverse()) {
    try {
      await fn();
    } catch {
      /* ignore */
    }
  }
}
process.exit(exitCode);
