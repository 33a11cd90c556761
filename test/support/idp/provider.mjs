// @ts-check
/// <reference path="./oidc-provider-shim.d.ts" />
/**
 * Development / test OpenID Provider for oidc-gateway.
 *
 * Mimics the Keycloak realm used by Kong's "client credentials grant" guide
 * (issuer `<origin>/realms/master`, Keycloak-style endpoint paths) on top of
 * oidc-provider 9, plus test-control endpoints under `/__control/*`.
 *
 * Plain ES module, runs on `node` (>= 20) without a build step. oidc-provider
 * needs Node's http/https servers (client certificates come from the TLS socket).
 *
 * NOT FOR PRODUCTION: everything is in memory, secrets are hard-coded dev values.
 */

import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as path from "node:path";
import * as tls from "node:tls";
import * as querystring from "node:querystring";

import { Provider, errors } from "oidc-provider";
import * as jose from "jose";
// oidc-provider has no "exports" map, its internals are importable. They are used for:
// - the grant helpers (DPoP / mTLS binding, resource resolution) in the password grant,
// - reaching the provider's keystore for runtime key rotation.
import * as grantHelpers from "oidc-provider/lib/helpers/grants.js";
import { applyDpopBinding } from "oidc-provider/lib/helpers/grant_common.js";
import instance from "oidc-provider/lib/helpers/weak_cache.js";

import { createMapAdapterFactory } from "./memory-adapter.mjs";

/** Keycloak-like endpoint paths (relative to the issuer). */
export const ROUTES = Object.freeze({
  authorization: "/protocol/openid-connect/auth",
  token: "/protocol/openid-connect/token",
  jwks: "/protocol/openid-connect/certs",
  introspection: "/protocol/openid-connect/token/introspect",
  revocation: "/protocol/openid-connect/revoke",
  userinfo: "/protocol/openid-connect/userinfo",
  end_session: "/protocol/openid-connect/logout",
  pushed_authorization_request: "/protocol/openid-connect/ext/par/request",
});

/** Fixed development client secrets (override with options.secrets). */
export const DEFAULT_SECRETS = Object.freeze({
  service: "cf4c655a-0622-4ce6-a0de-d3353ef0b714",
  "cert-bound": "cert-bound-secret",
  "client-dpop-auth": "client-dpop-auth-secret",
  opaque: "opaque-secret",
});

export const DEFAULT_KONG_JWKS_URI = "http://127.0.0.1:8001/openid-connect/jwks";
export const DEFAULT_AUDIENCE = "http://localhost:8000";
export const DEFAULT_SCOPES = "openid profile email api";
export const CLIENT_TLS_SUBJECT_DN = "CN=JohnDoe,OU=IT";

/**
 * @typedef {object} IdpUser
 * @property {string} username   also the `sub` of tokens issued to this user
 * @property {string} password
 * @property {Record<string, unknown>} [claims]  extra claims (name, email, ...)
 */

/**
 * @typedef {object} IdpTlsOptions
 * @property {string} cert  path to the server certificate (PEM), e.g. certs/gateway.crt
 * @property {string} key   path to its key
 * @property {string} [ca]  path to the CA trusted for client certificates (tls_client_auth),
 *                          also trusted when fetching https jwks_uri's
 * @property {string} [selfSignedClientCert] path of the self-signed client cert registered for
 *                          `client-self-signed`; defaults to `self-signed-client.crt` next to `ca`
 *                          (or next to `cert`) when that file exists
 */

/**
 * @typedef {object} IdpOptions
 * @property {number} [port=0]               listen port (0 = random)
 * @property {string} [host='127.0.0.1']     listen address
 * @property {string} [issuerHost='localhost'] host part of the issuer (`localhost` or `127.0.0.1`)
 * @property {string} [realm='master']       issuer path is `/realms/<realm>`
 * @property {string} [audience]             default resource / `aud` of access tokens (http://localhost:8000)
 * @property {string} [scopes]               scopes allowed in access tokens ('openid profile email api')
 * @property {number} [accessTokenTtl=300]   seconds
 * @property {'RS256'|'ES256'|'PS256'} [accessTokenAlg='RS256']
 * @property {string} [kongJwksUri]          jwks_uri of the `kong` private_key_jwt client
 * @property {number} [clientJwksMaxAge]     if set, a client's fetched jwks_uri is considered stale after
 *                                           this many seconds (instead of oidc-provider's >= 60 s), i.e. it is
 *                                           re-downloaded when an assertion doesn't verify with cached keys
 * @property {string[]} [opaqueClients=['opaque']] clients that get opaque (introspectable) access tokens
 * @property {Record<string, any>[]} [extraClients] extra client metadata (defaults: grant_types
 *                                           ['client_credentials'], client_secret_basic, no response types)
 * @property {Partial<Record<string, string>>} [secrets] override DEFAULT_SECRETS entries
 * @property {IdpUser[]} [users]             default [{ username: 'john', password: 'doe' }]
 * @property {Record<string, unknown>} [extraClaims] added to every access token / introspection response
 * @property {Record<string, Record<string, unknown>>} [clientClaims] client_id -> claims added to the
 *                                           access tokens issued to that client (e.g. `groups`, `realm_access`)
 * @property {boolean} [jwtIntrospection=false] enable features.jwtIntrospection
 * @property {boolean} [dpopRequireNonce=false] require DPoP server nonces
 * @property {IdpTlsOptions} [tls]           serve HTTPS (+ mTLS) instead of HTTP
 * @property {boolean} [debug]               log oidc-provider errors to stderr (also env IDP_DEBUG=1)
 */

/**
 * @typedef {object} TokenStats
 * @property {number} total
 * @property {Record<string, number>} byClient
 * @property {Record<string, number>} byGrant
 * @property {Record<string, number>} byStatus
 */

/**
 * @typedef {object} IdpStats
 * @property {TokenStats} token        requests that reached the token endpoint (incl. failed ones)
 * @property {number} discovery         GET <issuer>/.well-known/openid-configuration
 * @property {number} jwks              downloads of the IdP's own JWKS
 * @property {number} introspection
 * @property {number} revocation
 * @property {number} userinfo
 * @property {Record<string, number>} clientJwksFetches   jwks_uri downloads per client id
 * @property {Record<string, number>} jwksUriFetches      jwks_uri downloads per URL
 * @property {{ headers: Record<string, string>, params: Record<string, unknown> } | undefined} lastIntrospection
 *   the last introspection request's `x-*` headers and form parameters (`token` and `client_secret` left out)
 * @property {{ url: string, headers: Record<string, string>, params: Record<string, unknown> } | undefined} lastToken
 *   the last token request's URL, `x-*` headers and form parameters (`client_secret` and `password` left out)
 */

/**
 * @typedef {'token'|'discovery'|'jwks'|'introspection'|'revocation'|'userinfo'} Target
 */

/**
 * @typedef {object} Fault
 * @property {number} value      delay ms, or HTTP status (0 = drop the connection)
 * @property {number} remaining  requests left to affect (Infinity = until /__control/normal)
 * @property {Set<string>} targets
 */

/**
 * @typedef {object} Idp
 * @property {string} issuer         e.g. http://localhost:41234/realms/master
 * @property {string} url            origin, e.g. http://localhost:41234 (control endpoints live here)
 * @property {number} port
 * @property {string} host           listen address
 * @property {'http'|'https'} protocol
 * @property {string} discoveryUrl
 * @property {string} tokenEndpoint
 * @property {string} jwksUri
 * @property {string} introspectionEndpoint
 * @property {string} revocationEndpoint
 * @property {Record<string, string>} secrets   client_id -> client_secret of the built-in secret clients
 * @property {Provider} provider     the oidc-provider instance (escape hatch)
 * @property {() => IdpStats} stats
 * @property {() => void} resetStats
 * @property {(opts?: { alg?: string, dropOld?: boolean }) => { kid: string, alg: string, kids: string[] }} rotateKeys
 * @property {(clientId?: string, opts?: { keepKeys?: boolean }) => Promise<string[]>} refreshClientJwks
 * @property {(ms: number, opts?: { count?: number, targets?: string[] }) => void} delay
 * @property {(status: number, opts?: { count?: number, targets?: string[] }) => void} fail
 * @property {() => void} normal
 * @property {(seconds: number) => void} setAccessTokenTtl
 * @property {(metadata: Record<string, any>) => Promise<void>} addClient   register a client at runtime
 * @property {() => Promise<void>} close
 */

const TARGETS = /** @type {const} */ (["token", "discovery", "jwks", "introspection", "revocation", "userinfo"]);

/** @returns {IdpStats} */
function emptyStats() {
  return {
    token: { total: 0, byClient: {}, byGrant: {}, byStatus: {} },
    discovery: 0,
    jwks: 0,
    introspection: 0,
    revocation: 0,
    userinfo: 0,
    clientJwksFetches: {},
    jwksUriFetches: {},
    lastIntrospection: undefined,
    lastToken: undefined,
  };
}

/**
 * @param {Record<string, number>} map
 * @param {string} key
 */
function inc(map, key) {
  map[key] = (map[key] ?? 0) + 1;
}

/** @param {number} ms */
const sleep = (ms) =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

/**
 * Generates a private signing JWK usable in oidc-provider's `jwks`.
 * @param {string} alg RS256 | PS256 | ES256
 * @returns {Record<string, any>}
 */
function generateSigningJwk(alg) {
  // Keys are generated straight to PEM and re-imported before the JWK export:
  // on Node 20, exporting a JWK from a KeyObject returned by generateKeyPairSync can
  // deadlock when a GC runs mid-export (the KeyGenJob destructor takes the same key
  // mutex ExportJWK holds). A re-imported key has its own mutex.
  const privateKeyEncoding = /** @type {const} */ ({ type: "pkcs8", format: "pem" });
  const publicKeyEncoding = /** @type {const} */ ({ type: "spki", format: "pem" });
  const { privateKey: pem } = alg.startsWith("ES")
    ? crypto.generateKeyPairSync("ec", { namedCurve: "P-256", privateKeyEncoding, publicKeyEncoding })
    : crypto.generateKeyPairSync("rsa", { modulusLength: 2048, privateKeyEncoding, publicKeyEncoding });
  const jwk = crypto.createPrivateKey(pem).export({ format: "jwk" });
  return {
    ...jwk,
    alg,
    use: "sig",
    kid: `${alg.toLowerCase()}-${crypto.randomBytes(6).toString("hex")}`,
  };
}

/** @param {Record<string, any>} jwk */
function publicJwk(jwk) {
  const { kty, use, kid, alg, n, e, crv, x, y } = jwk;
  return Object.fromEntries(
    Object.entries({
      kty,
      use,
      kid,
      alg,
      n,
      e,
      crv,
      x,
      y,
    }).filter(([, v]) => v !== undefined),
  );
}

/**
 * RFC 4514 string of a certificate subject: RDNs in reverse (most specific first)
 * order, comma separated. Node's X509Certificate#subject lists them in DER order,
 * one per line, so `/OU=IT/CN=JohnDoe` gives "OU=IT\nCN=JohnDoe" -> "CN=JohnDoe,OU=IT".
 * @param {crypto.X509Certificate} cert
 */
export function subjectDnRfc4514(cert) {
  return cert.subject.split("\n").filter(Boolean).reverse().join(",");
}

/**
 * Normalises a DN string for comparison: trims spaces around separators and
 * upper-cases attribute type names (values are compared exactly).
 * @param {string} dn
 */
function normalizeDn(dn) {
  return dn
    .split(/(?<!\\),/)
    .map((rdn) =>
      rdn
        .split(/(?<!\\)\+/)
        .map((ava) => {
          const i = ava.indexOf("=");
          if (i === -1) return ava.trim();
          return `${ava.slice(0, i).trim().toUpperCase()}=${ava.slice(i + 1).trim()}`;
        })
        .join("+"),
    )
    .join(",");
}

/**
 * @param {crypto.X509Certificate} cert
 * @param {string} type DNS | IP Address | URI | email
 */
function subjectAltNames(cert, type) {
  return (cert.subjectAltName ?? "")
    .split(/,\s*/)
    .filter((entry) => entry.startsWith(`${type}:`))
    .map((entry) => entry.slice(type.length + 1));
}

/**
 * `features.mTLS.getCertificate`: the peer certificate of the Node TLS socket
 * (an X509Certificate, which oidc-provider accepts as well as PEM), or undefined.
 * @param {any} ctx koa context
 * @returns {crypto.X509Certificate | undefined}
 */
function getCertificate(ctx) {
  const socket = ctx.socket ?? ctx.req?.socket;
  if (!socket || typeof socket.getPeerX509Certificate !== "function") return undefined;
  return socket.getPeerX509Certificate() ?? undefined;
}

/**
 * Minimal fetch for oidc-provider's outbound requests (client jwks_uri).
 * oidc-provider's default fetch uses an SSRF-protected dispatcher that refuses
 * loopback / private addresses; a test IdP must reach http://127.0.0.1:... so
 * this goes through node:http(s) instead (and trusts the dev CA for https).
 * @param {string} url
 * @param {{ method?: string, headers?: any, body?: any, signal?: AbortSignal }} options
 * @param {string[] | undefined} ca
 * @returns {Promise<Response>}
 */
function nodeFetch(url, options, ca) {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const mod = target.protocol === "https:" ? https : http;
    /** @type {Record<string, string>} */
    const headers = {};
    new Headers(options.headers).forEach((value, name) => {
      if (value !== "") headers[name] = value;
    });
    const req = mod.request(
      target,
      {
        method: options.method ?? "GET",
        headers,
        signal: options.signal,
        ...(ca && target.protocol === "https:" ? { ca } : {}),
      },
      (res) => {
        /** @type {Buffer[]} */
        const chunks = [];
        res.on("data", (chunk) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (value === undefined) continue;
            for (const v of Array.isArray(value) ? value : [value]) responseHeaders.append(name, v);
          }
          const status = res.statusCode ?? 500;
          const nullBody = [101, 204, 205, 304].includes(status);
          resolve(new Response(nullBody ? null : Buffer.concat(chunks), { status, headers: responseHeaders }));
        });
      },
    );
    req.on("error", reject);
    if (options.body) req.write(options.body);
    req.end();
  });
}

/**
 * Reads an urlencoded request body (only used when a failure is injected,
 * i.e. the request never reaches oidc-provider).
 * @param {import('node:http').IncomingMessage} req
 * @returns {Promise<Record<string, any>>}
 */
async function readForm(req) {
  if (!req.readable) return {};
  /** @type {Buffer[]} */
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return querystring.parse(Buffer.concat(chunks).toString("utf8"));
}

/**
 * Best effort client_id of a token request (for stats), also for requests that failed
 * before/at client authentication.
 * @param {any} ctx
 * @param {Record<string, any> | undefined} params
 */
function identifyClient(ctx, params) {
  try {
    const id = ctx.oidc?.client?.clientId;
    if (id) return id;
  } catch {
    /* ignore */
  }
  const authorization = ctx.get?.("authorization") ?? ctx.headers?.authorization ?? "";
  const basic = /^basic\s+(\S+)$/i.exec(authorization);
  if (basic?.[1]) {
    const decoded = Buffer.from(basic[1], "base64").toString("utf8");
    const i = decoded.indexOf(":");
    if (i > 0) {
      try {
        return decodeURIComponent(decoded.slice(0, i).replace(/\+/g, "%20"));
      } catch {
        return decoded.slice(0, i);
      }
    }
  }
  if (typeof params?.client_id === "string" && params.client_id) return params.client_id;
  if (typeof params?.client_assertion === "string") {
    try {
      const payload = JSON.parse(Buffer.from(params.client_assertion.split(".")[1] ?? "", "base64url").toString("utf8"));
      if (typeof payload.sub === "string") return payload.sub;
      if (typeof payload.iss === "string") return payload.iss;
    } catch {
      /* ignore */
    }
  }
  return "unknown";
}

/**
 * @param {import('node:http').ServerResponse} res
 * @param {number} status
 * @param {unknown} body
 */
function sendJson(res, status, body) {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(payload),
    "cache-control": "no-store",
  });
  res.end(payload);
}

/** @param {import('node:http').IncomingMessage} req */
async function readJson(req) {
  /** @type {Buffer[]} */
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString("utf8").trim();
  return text ? JSON.parse(text) : undefined;
}

/**
 * Locates the self-signed client certificate (see IdpTlsOptions.selfSignedClientCert).
 * @param {IdpTlsOptions | undefined} tlsOptions
 */
function findSelfSignedCert(tlsOptions) {
  if (!tlsOptions) return undefined;
  if (tlsOptions.selfSignedClientCert) return tlsOptions.selfSignedClientCert;
  for (const base of [tlsOptions.ca, tlsOptions.cert]) {
    if (!base) continue;
    const candidate = path.join(path.dirname(base), "self-signed-client.crt");
    if (fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * JWKS for a self_signed_tls_client_auth client: the cert's public key + x5c.
 * @param {string} pem
 */
function jwksForCertificate(pem) {
  const cert = new crypto.X509Certificate(pem);
  const jwk = cert.publicKey.export({ format: "jwk" });
  return { keys: [{ ...jwk, x5c: [cert.raw.toString("base64")] }] };
}

/**
 * Starts the test IdP.
 * @param {IdpOptions} [options]
 * @returns {Promise<Idp>}
 */
export async function startIdp(options = {}) {
  const host = options.host ?? "127.0.0.1";
  const issuerHost = options.issuerHost ?? "localhost";
  const realm = options.realm ?? "master";
  const issuerPath = `/realms/${realm}`;
  const audience = options.audience ?? DEFAULT_AUDIENCE;
  const scopes = options.scopes ?? DEFAULT_SCOPES;
  const accessTokenAlg = options.accessTokenAlg ?? "RS256";
  const kongJwksUri = options.kongJwksUri ?? DEFAULT_KONG_JWKS_URI;
  const opaqueClients = new Set(options.opaqueClients ?? ["opaque"]);
  const secrets = { ...DEFAULT_SECRETS, ...options.secrets };
  const debug = options.debug ?? process.env.IDP_DEBUG === "1";
  const users = new Map(
    (
      options.users ?? [
        {
          username: "john",
          password: "doe",
          claims: {
            name: "John Doe",
            given_name: "John",
            family_name: "Doe",
            email: "john@example.com",
            email_verified: true,
          },
        },
      ]
    ).map((u) => [u.username, u]),
  );

  let accessTokenTtl = options.accessTokenTtl ?? 300;
  let stats = emptyStats();
  /** @type {{ delay?: Fault, fail?: Fault }} */
  const faults = {};
  /** client id -> jwks_uri */
  const jwksUriClients = new Map();
  /** client id -> epoch ms of the last jwks_uri download */
  const lastJwksFetch = new Map();

  // ---------------------------------------------------------------- TLS
  const tlsOptions = options.tls;
  /** @type {string[] | undefined} */
  let fetchCa;
  /** @type {http.Server | https.Server} */
  let server;
  /** @type {((req: http.IncomingMessage, res: http.ServerResponse) => void) | undefined} */
  let handler;
  const onRequest = (/** @type {http.IncomingMessage} */ req, /** @type {http.ServerResponse} */ res) => {
    if (!handler) {
      sendJson(res, 503, { error: "temporarily_unavailable", error_description: "IdP starting" });
      return;
    }
    handler(req, res);
  };
  if (tlsOptions) {
    const caPem = tlsOptions.ca ? fs.readFileSync(tlsOptions.ca, "utf8") : undefined;
    fetchCa = caPem ? [...tls.rootCertificates, caPem] : undefined;
    server = https.createServer(
      {
        cert: fs.readFileSync(tlsOptions.cert),
        key: fs.readFileSync(tlsOptions.key),
        ...(caPem ? { ca: caPem } : {}),
        requestCert: true,
        rejectUnauthorized: false,
      },
      onRequest,
    );
  } else {
    server = http.createServer(onRequest);
  }
  server.keepAliveTimeout = 5_000;

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve(undefined);
    });
  });
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("unexpected server address");
  const { port } = address;
  const protocol = tlsOptions ? "https" : "http";
  const origin = `${protocol}://${issuerHost.includes(":") ? `[${issuerHost}]` : issuerHost}:${port}`;
  const issuer = `${origin}${issuerPath}`;

  // ---------------------------------------------------------------- keys
  /** @type {Record<string, any>[]} private JWKs, in publication order */
  let signingKeys = [generateSigningJwk("RS256"), generateSigningJwk("ES256")];
  if (!["RS256", "ES256"].includes(accessTokenAlg)) signingKeys.push(generateSigningJwk(accessTokenAlg));
  /** alg -> kid used to sign access tokens */
  const currentKid = new Map(signingKeys.map((k) => [k.alg, k.kid]));

  // ---------------------------------------------------------------- clients
  /** @type {Record<string, any>[]} */
  const clients = [
    {
      client_id: "service",
      client_secret: secrets.service,
      token_endpoint_auth_method: "client_secret_basic",
    },
    {
      client_id: "kong",
      token_endpoint_auth_method: "private_key_jwt",
      jwks_uri: kongJwksUri,
      grant_types: ["client_credentials", "password"],
    },
    {
      client_id: "cert-bound",
      client_secret: secrets["cert-bound"],
      token_endpoint_auth_method: "client_secret_basic",
      tls_client_certificate_bound_access_tokens: true,
      grant_types: ["client_credentials", "password"],
    },
    {
      client_id: "client-tls-auth",
      token_endpoint_auth_method: "tls_client_auth",
      tls_client_auth_subject_dn: CLIENT_TLS_SUBJECT_DN,
      grant_types: ["client_credentials", "password"],
    },
    {
      client_id: "client-dpop-auth",
      client_secret: secrets["client-dpop-auth"],
      token_endpoint_auth_method: "client_secret_basic",
      dpop_bound_access_tokens: true,
      grant_types: ["client_credentials", "password"],
    },
    {
      client_id: "opaque",
      client_secret: secrets.opaque,
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["client_credentials", "password"],
    },
  ];
  const selfSignedCertPath = findSelfSignedCert(tlsOptions);
  if (selfSignedCertPath) {
    clients.push({
      client_id: "client-self-signed",
      token_endpoint_auth_method: "self_signed_tls_client_auth",
      jwks: jwksForCertificate(fs.readFileSync(selfSignedCertPath, "utf8")),
    });
  }
  for (const extra of options.extraClients ?? []) clients.push(structuredClone(extra));
  for (const c of clients) {
    c.grant_types ??= ["client_credentials"];
    c.response_types ??= [];
    c.redirect_uris ??= [];
    if (c.jwks_uri) jwksUriClients.set(c.client_id, c.jwks_uri);
  }

  // ---------------------------------------------------------------- provider
  /** @type {Record<string, string>} */
  const mtlsEndpointAliases = {
    token_endpoint: `${issuer}${ROUTES.token}`,
    introspection_endpoint: `${issuer}${ROUTES.introspection}`,
    revocation_endpoint: `${issuer}${ROUTES.revocation}`,
    userinfo_endpoint: `${issuer}${ROUTES.userinfo}`,
  };

  const provider = new Provider(issuer, {
    adapter: createMapAdapterFactory(),
    clients,
    jwks: { keys: signingKeys.map((k) => ({ ...k })) },
    routes: { ...ROUTES },
    scopes: ["openid", "offline_access", ...scopes.split(" ").filter((s) => !["openid", "offline_access"].includes(s))],
    claims: {
      openid: ["sub"],
      profile: ["name", "given_name", "family_name", "preferred_username"],
      email: ["email", "email_verified"],
    },
    clientAuthMethods: [
      "client_secret_basic",
      "client_secret_post",
      "client_secret_jwt",
      "private_key_jwt",
      "tls_client_auth",
      "self_signed_tls_client_auth",
      "none",
    ],
    // oidc-provider's defaults plus HS384/HS512, the other client_secret_jwt algorithms Kong allows.
    enabledJWA: { clientAuthSigningAlgValues: ["HS256", "HS384", "HS512", "RS256", "PS256", "ES256", "Ed25519", "EdDSA"] },
    clientDefaults: {
      grant_types: ["client_credentials"],
      response_types: [],
      token_endpoint_auth_method: "client_secret_basic",
      id_token_signed_response_alg: "RS256",
    },
    cookies: { keys: [crypto.randomBytes(32).toString("base64url")] },
    discovery: tlsOptions ? { mtls_endpoint_aliases: mtlsEndpointAliases } : {},
    ttl: {
      AccessToken: (/** @type {any} */ _ctx, /** @type {any} */ token) => token.resourceServer?.accessTokenTTL ?? accessTokenTtl,
      ClientCredentials: (/** @type {any} */ _ctx, /** @type {any} */ token) => token.resourceServer?.accessTokenTTL ?? accessTokenTtl,
      Grant: 3600,
      IdToken: 3600,
      Interaction: 600,
      Session: 3600,
      RefreshToken: 3600,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
    },
    /** @param {any} _ctx @param {string} sub */
    async findAccount(_ctx, sub) {
      const user = users.get(sub);
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { sub, preferred_username: user.username, ...user.claims };
        },
      };
    },
    /** @param {any} _ctx @param {any} token */
    async extraTokenClaims(_ctx, token) {
      const user = token.accountId ? users.get(token.accountId) : undefined;
      return {
        azp: token.clientId,
        preferred_username: user ? user.username : `service-account-${token.clientId}`,
        ...(user?.claims ?? {}),
        ...(options.extraClaims ?? {}),
        ...(options.clientClaims?.[token.clientId] ?? {}),
      };
    },
    clientBasedCORS: () => true,
    fetch: (/** @type {string | URL} */ url, /** @type {any} */ fetchOptions) => {
      const href = String(url);
      inc(stats.jwksUriFetches, href);
      for (const [clientId, uri] of jwksUriClients) {
        if (uri === href) {
          inc(stats.clientJwksFetches, clientId);
          lastJwksFetch.set(clientId, Date.now());
        }
      }
      // deliberately drop oidc-provider's SSRF-protected `dispatcher` (it refuses loopback)
      return nodeFetch(href, fetchOptions, fetchCa);
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true, allowedPolicy: async () => true },
      revocation: { enabled: true, allowedPolicy: async () => true },
      jwtIntrospection: { enabled: !!options.jwtIntrospection },
      dPoP: {
        enabled: true,
        ...(options.dpopRequireNonce ? { nonceSecret: crypto.randomBytes(32), requireNonce: () => true } : {}),
      },
      mTLS: {
        enabled: true,
        certificateBoundAccessTokens: true,
        tlsClientAuth: true,
        selfSignedTlsClientAuth: true,
        getCertificate,
        /** @param {any} ctx */
        certificateAuthorized(ctx) {
          const socket = ctx.socket ?? ctx.req?.socket;
          return socket?.authorized === true;
        },
        /** @param {any} ctx @param {string} property @param {string} expected */
        certificateSubjectMatches(ctx, property, expected) {
          const cert = getCertificate(ctx);
          if (!cert) return false;
          switch (property) {
            case "tls_client_auth_subject_dn":
              return normalizeDn(subjectDnRfc4514(cert)) === normalizeDn(expected);
            case "tls_client_auth_san_dns":
              return subjectAltNames(cert, "DNS").includes(expected);
            case "tls_client_auth_san_uri":
              return subjectAltNames(cert, "URI").includes(expected);
            case "tls_client_auth_san_ip":
              return subjectAltNames(cert, "IP Address").includes(expected);
            case "tls_client_auth_san_email":
              return subjectAltNames(cert, "email").includes(expected);
            default:
              return false;
          }
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => audience,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (/** @type {any} */ _ctx, /** @type {string} */ resourceIndicator, /** @type {any} */ client) => ({
          audience: resourceIndicator,
          scope: scopes,
          accessTokenTTL: accessTokenTtl,
          accessTokenFormat: opaqueClients.has(client.clientId) ? "opaque" : "jwt",
          jwt: { sign: { alg: accessTokenAlg, kid: currentKid.get(accessTokenAlg) } },
        }),
      },
    },
  });

  provider.on("server_error", (_ctx, err) => {
    process.stderr.write(`idp: server_error: ${err?.stack ?? err}\n`);
  });
  provider.on("error", (err) => {
    if (debug) process.stderr.write(`idp: error: ${err?.stack ?? err}\n`);
  });
  if (debug) {
    for (const event of ["grant.error", "introspection.error", "revocation.error"]) {
      provider.on(event, (_ctx, err) => {
        process.stderr.write(`idp: ${event}: ${err?.message} ${err?.error_description ?? ""}\n`);
      });
    }
  }

  // ------------------------------------------------------ password grant
  // oidc-provider has no ROPC grant; register one before any client is looked up
  // (static clients are validated lazily against the registered grant types).
  provider.registerGrantType(
    "password",
    async (ctx) => {
      const { client, params } = ctx.oidc;
      if (!params.username) throw new errors.InvalidRequest("missing required parameter 'username'");
      if (!params.password) throw new errors.InvalidRequest("missing required parameter 'password'");

      const dPoP = await grantHelpers.validateDpop(provider, ctx);

      const user = users.get(params.username);
      if (!user || user.password !== params.password) {
        throw new errors.InvalidGrant("invalid resource owner credentials");
      }

      const resourceServers = await grantHelpers.resolveRequestedResources(provider, ctx);
      const requested = [...grantHelpers.validateClientScope(provider, ctx)];

      const at = new provider.AccessToken({
        accountId: user.username,
        client,
        gty: "password",
        scope: requested.join(" ") || undefined,
      });

      const { 0: resourceServer, length } = resourceServers;
      if (resourceServer) {
        if (length !== 1) {
          throw new errors.InvalidTarget("only a single resource indicator value is supported for this grant type");
        }
        at.resourceServer = resourceServer;
        at.scope = requested.filter((s) => resourceServer.scopes.has(s)).join(" ") || undefined;
      }

      const cert = grantHelpers.checkMtlsCert(provider, ctx);
      if (cert) at.setThumbprint("x5t", cert);
      await applyDpopBinding(provider, ctx, dPoP, at);
      grantHelpers.checkDpopRequired(provider, ctx, dPoP);

      ctx.oidc.entity("AccessToken", at);
      const value = await at.save();

      ctx.body = grantHelpers.buildTokenResponse(provider, {
        accessToken: value,
        expiresIn: at.expiration,
        scope: at.scope || undefined,
        tokenType: at.tokenType,
      });
    },
    ["username", "password", "scope", "resource"],
    ["resource"],
  );

  // ------------------------------------------------ token exchange (RFC 8693)
  // oidc-provider has no token exchange grant: this one accepts an access token of this IdP as the
  // subject token and issues a client credentials token (with the subject's `sub`) for the
  // requested resource and scopes.
  provider.registerGrantType(
    "urn:ietf:params:oauth:grant-type:token-exchange",
    async (ctx) => {
      const { client, params } = ctx.oidc;
      if (!params.subject_token) throw new errors.InvalidRequest("missing required parameter 'subject_token'");
      if (params.subject_token_type !== "urn:ietf:params:oauth:token-type:access_token") {
        throw new errors.InvalidRequest("only access tokens can be exchanged");
      }
      /** @type {Record<string, any>} */
      let subject;
      try {
        ({ payload: subject } = await jose.jwtVerify(params.subject_token, jose.createLocalJWKSet({ keys: signingKeys.map(publicJwk) }), { issuer }));
      } catch {
        throw new errors.InvalidGrant("the subject token is not an active access token of this issuer");
      }
      const resourceServers = await grantHelpers.resolveRequestedResources(provider, ctx);
      const requested = [...grantHelpers.validateClientScope(provider, ctx)];
      const at = new provider.ClientCredentials({
        client,
        scope: requested.join(" ") || undefined,
        extra: { sub: subject.sub, act: { sub: client.clientId } },
      });
      const { 0: resourceServer, length } = resourceServers;
      if (resourceServer) {
        if (length !== 1) throw new errors.InvalidTarget("only a single resource indicator value is supported for this grant type");
        at.resourceServer = resourceServer;
        at.scope = requested.filter((s) => resourceServer.scopes.has(s)).join(" ") || undefined;
      }
      ctx.oidc.entity("ClientCredentials", at);
      const value = await at.save();
      ctx.body = {
        ...grantHelpers.buildTokenResponse(provider, {
          accessToken: value,
          expiresIn: at.expiration,
          scope: at.scope || undefined,
          tokenType: at.tokenType,
        }),
        issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
      };
    },
    ["subject_token", "subject_token_type", "requested_token_type", "audience", "scope", "resource"],
    ["resource", "audience"],
  );

  // ------------------------------------------- stats & fault injection
  /** @param {string} p koa path (issuer prefix stripped) @returns {Target | undefined} */
  const targetOf = (p) => {
    if (p === "/.well-known/openid-configuration") return "discovery";
    if (p === ROUTES.token) return "token";
    if (p === ROUTES.jwks) return "jwks";
    if (p === ROUTES.introspection) return "introspection";
    if (p === ROUTES.revocation) return "revocation";
    if (p === ROUTES.userinfo) return "userinfo";
    return undefined;
  };

  /**
   * @param {'delay'|'fail'} kind
   * @param {string} target
   */
  const takeFault = (kind, target) => {
    const fault = faults[kind];
    if (!fault || fault.remaining <= 0) return undefined;
    if (!fault.targets.has(target) && !fault.targets.has("all")) return undefined;
    fault.remaining -= 1;
    if (fault.remaining <= 0) delete faults[kind];
    return fault;
  };

  /**
   * @param {any} ctx
   * @param {Record<string, any> | undefined} params
   */
  const countToken = (ctx, params) => {
    inc(stats.token.byClient, identifyClient(ctx, params));
    inc(stats.token.byGrant, typeof params?.grant_type === "string" ? params.grant_type : "unknown");
    inc(stats.token.byStatus, String(ctx.status));
  };

  const markStaleClientJwks = async () => {
    if (options.clientJwksMaxAge === undefined) return;
    const now = Date.now();
    for (const [clientId, fetchedAt] of lastJwksFetch) {
      if (now - fetchedAt < options.clientJwksMaxAge * 1000) continue;
      const client = await provider.Client.find(clientId);
      const keystore = /** @type {any} */ (client)?.asymmetricKeyStore;
      if (keystore?.freshUntil) keystore.freshUntil = 0;
    }
  };

  provider.use(async (ctx, next) => {
    const target = targetOf(ctx.path);
    if (!target) return next();

    if (target === "token") stats.token.total += 1;
    else stats[target] += 1;

    const delay = takeFault("delay", target);
    if (delay) await sleep(delay.value);

    const fail = takeFault("fail", target);
    if (fail) {
      const params = target === "token" ? await readForm(ctx.req) : undefined;
      if (fail.value === 0) {
        ctx.status = 599;
        if (target === "token") countToken(ctx, params);
        ctx.respond = false;
        ctx.req.socket.destroy();
        return undefined;
      }
      ctx.status = fail.value;
      ctx.set("cache-control", "no-store");
      ctx.body = { error: "temporarily_unavailable", error_description: "failure injected via /__control/fail" };
      if (target === "token") countToken(ctx, params);
      return undefined;
    }

    if (target === "token" || target === "introspection" || target === "revocation") {
      await markStaleClientJwks();
    }

    try {
      await next();
    } finally {
      if (target === "introspection" || target === "token") {
        /** @type {Record<string, string>} */
        const headers = {};
        for (const [name, value] of Object.entries(ctx.headers)) if (name.startsWith("x-") && typeof value === "string") headers[name] = value;
        const { token: _token, client_secret: _secret, password: _password, ...params } = /** @type {any} */ (ctx).oidc?.body ?? {};
        if (target === "token") stats.lastToken = { url: ctx.originalUrl, headers, params };
        else stats.lastIntrospection = { headers, params };
      }
      if (target === "token") {
        /** @type {Record<string, any> | undefined} */
        let params;
        try {
          params = /** @type {any} */ (ctx).oidc?.params;
        } catch {
          /* ignore */
        }
        countToken(ctx, params);
      }
    }
    return undefined;
  });

  // ------------------------------------------------------- key rotation
  const publishKeys = () => {
    const internals = instance(provider);
    internals.keystore.clear();
    for (const k of signingKeys) internals.keystore.add({ ...k });
    internals.jwks = { keys: signingKeys.map(publicJwk) };
  };

  /** @type {Idp['rotateKeys']} */
  const rotateKeys = ({ alg = accessTokenAlg, dropOld = false } = {}) => {
    if (!["RS256", "PS256", "ES256"].includes(alg)) throw new Error(`unsupported alg ${alg}`);
    const jwk = generateSigningJwk(alg);
    if (dropOld) signingKeys = signingKeys.filter((k) => k.alg !== alg);
    signingKeys.push(jwk);
    currentKid.set(alg, jwk.kid);
    publishKeys();
    return { kid: jwk.kid, alg, kids: signingKeys.map((k) => k.kid) };
  };

  /** @type {Idp['refreshClientJwks']} */
  const refreshClientJwks = async (clientId, { keepKeys = false } = {}) => {
    const ids = clientId ? [clientId] : [...jwksUriClients.keys()];
    const done = [];
    for (const id of ids) {
      const client = await provider.Client.find(id);
      if (!client) continue;
      const keystore = /** @type {any} */ (client).asymmetricKeyStore;
      if (!keepKeys) keystore.clear();
      keystore.freshUntil = undefined;
      done.push(id);
    }
    return done;
  };

  /** @type {Idp['addClient']} */
  const addClient = async (metadata) => {
    /** @type {Record<string, any>} */
    const md = {
      grant_types: ["client_credentials"],
      response_types: [],
      redirect_uris: [],
      ...metadata,
    };
    if (!md.client_id) throw new Error("client_id is required");
    if (jwksUriClients.has(md.client_id) || clients.some((c) => c.client_id === md.client_id)) {
      throw new Error(`client ${md.client_id} already exists`);
    }
    await provider.Client.validate(md);
    await provider.Client.adapter.upsert(md.client_id, md);
    clients.push(md);
    if (md.jwks_uri) jwksUriClients.set(md.client_id, md.jwks_uri);
  };

  /**
   * @param {URLSearchParams} q
   * @returns {{ count: number, targets: Set<string> }}
   */
  const faultScope = (q) => {
    const count = q.has("count") ? Number(q.get("count")) : Infinity;
    const targets = new Set(
      (q.get("target") ?? "token")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
    );
    for (const t of targets) {
      if (t !== "all" && !TARGETS.includes(/** @type {any} */ (t))) throw new Error(`unknown target ${t}`);
    }
    if (!(count > 0)) throw new Error("count must be > 0");
    return { count, targets };
  };

  /** @type {Idp['delay']} */
  const setDelay = (ms, { count = Infinity, targets = ["token"] } = {}) => {
    faults.delay = { value: ms, remaining: count, targets: new Set(targets) };
  };
  /** @type {Idp['fail']} */
  const setFail = (status, { count = Infinity, targets = ["token"] } = {}) => {
    faults.fail = { value: status, remaining: count, targets: new Set(targets) };
  };
  const normal = () => {
    delete faults.delay;
    delete faults.fail;
  };

  // ------------------------------------------------------ HTTP plumbing
  const koa = provider.callback();

  /**
   * @param {http.IncomingMessage} req
   * @param {http.ServerResponse} res
   * @param {URL} url
   */
  const control = async (req, res, url) => {
    const q = url.searchParams;
    const route = url.pathname.replace(/^\/__control/, "").replace(/\/$/, "");
    const post = req.method === "POST";
    try {
      if (route === "/health" || route === "") return sendJson(res, 200, { ok: true, issuer });
      if (route === "/stats" && req.method === "GET") return sendJson(res, 200, stats);
      if (route === "/info" && req.method === "GET") {
        return sendJson(res, 200, {
          issuer,
          url: origin,
          port,
          audience,
          scopes,
          accessTokenTtl,
          accessTokenAlg,
          signingKids: signingKeys.map((k) => k.kid),
          currentKid: currentKid.get(accessTokenAlg),
          clients: clients.map((c) => ({
            client_id: c.client_id,
            token_endpoint_auth_method: c.token_endpoint_auth_method ?? "client_secret_basic",
            grant_types: c.grant_types,
            client_secret: c.client_secret,
            jwks_uri: c.jwks_uri,
            opaque: opaqueClients.has(c.client_id),
          })),
          faults: {
            delay: faults.delay && { ...faults.delay, targets: [...faults.delay.targets] },
            fail: faults.fail && { ...faults.fail, targets: [...faults.fail.targets] },
          },
        });
      }
      if (!post) return sendJson(res, 405, { error: "method_not_allowed", error_description: "use POST" });
      switch (route) {
        case "/reset-stats":
          stats = emptyStats();
          return sendJson(res, 200, { ok: true });
        case "/rotate-keys":
          return sendJson(
            res,
            200,
            rotateKeys({
              alg: q.get("alg") ?? accessTokenAlg,
              dropOld: ["1", "true"].includes(q.get("drop_old") ?? ""),
            }),
          );
        case "/refresh-client-jwks": {
          const ids = await refreshClientJwks(q.get("client_id") ?? undefined, {
            keepKeys: ["1", "true"].includes(q.get("keep_keys") ?? ""),
          });
          if (q.get("client_id") && !ids.length) return sendJson(res, 404, { error: "unknown client" });
          return sendJson(res, 200, { ok: true, clients: ids });
        }
        case "/delay": {
          const ms = Number(q.get("ms"));
          if (!Number.isFinite(ms) || ms < 0) return sendJson(res, 400, { error: "ms must be a number >= 0" });
          const { count, targets } = faultScope(q);
          setDelay(ms, { count, targets: [...targets] });
          return sendJson(res, 200, { ok: true, delay: { ms, count, targets: [...targets] } });
        }
        case "/fail": {
          const status = Number(q.get("status") ?? 503);
          if (!Number.isInteger(status) || (status !== 0 && (status < 400 || status > 599))) {
            return sendJson(res, 400, { error: "status must be 0 (drop connection) or 400..599" });
          }
          const { count, targets } = faultScope(q);
          setFail(status, { count, targets: [...targets] });
          return sendJson(res, 200, { ok: true, fail: { status, count, targets: [...targets] } });
        }
        case "/normal":
          normal();
          return sendJson(res, 200, { ok: true });
        case "/access-token-ttl": {
          const seconds = Number(q.get("seconds"));
          if (!Number.isInteger(seconds) || seconds <= 0) return sendJson(res, 400, { error: "seconds must be a positive integer" });
          accessTokenTtl = seconds;
          return sendJson(res, 200, { ok: true, accessTokenTtl });
        }
        case "/clients": {
          const body = await readJson(req);
          const list = Array.isArray(body) ? body : [body];
          for (const md of list) await addClient(md);
          return sendJson(res, 201, { ok: true, clients: list.map((md) => md.client_id) });
        }
        default:
          return sendJson(res, 404, { error: "not_found" });
      }
    } catch (err) {
      return sendJson(res, 400, { error: "bad_request", error_description: /** @type {Error} */ (err).message });
    }
  };

  handler = (req, res) => {
    const rawUrl = req.url ?? "/";
    const url = new URL(rawUrl, "http://idp.invalid");
    if (url.pathname === "/__control" || url.pathname.startsWith("/__control/")) {
      control(req, res, url).catch((err) => sendJson(res, 500, { error: "server_error", error_description: String(err) }));
      return;
    }
    if (url.pathname === issuerPath || url.pathname.startsWith(`${issuerPath}/`)) {
      // Mounting under a path prefix: strip it for koa's router but keep
      // req.originalUrl so oidc-provider builds endpoint URLs with the prefix.
      /** @type {any} */ (req).originalUrl = rawUrl;
      let rest = rawUrl.slice(issuerPath.length);
      if (!rest.startsWith("/")) rest = `/${rest}`;
      req.url = rest;
      koa(req, res);
      return;
    }
    sendJson(res, 404, { error: "not_found", error_description: `the issuer is ${issuer}` });
  };

  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await new Promise((resolve) => {
      server.close(() => resolve(undefined));
      server.closeAllConnections();
    });
  };

  return {
    issuer,
    url: origin,
    port,
    host,
    protocol,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    tokenEndpoint: `${issuer}${ROUTES.token}`,
    jwksUri: `${issuer}${ROUTES.jwks}`,
    introspectionEndpoint: `${issuer}${ROUTES.introspection}`,
    revocationEndpoint: `${issuer}${ROUTES.revocation}`,
    secrets: Object.fromEntries(clients.filter((c) => typeof c.client_secret === "string").map((c) => [c.client_id, c.client_secret])),
    provider,
    stats: () => structuredClone(stats),
    resetStats: () => {
      stats = emptyStats();
    },
    rotateKeys,
    refreshClientJwks,
    delay: setDelay,
    fail: setFail,
    normal,
    setAccessTokenTtl: (seconds) => {
      accessTokenTtl = seconds;
    },
    addClient,
    close,
  };
}
