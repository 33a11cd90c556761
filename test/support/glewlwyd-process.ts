/**
 * Glewlwyd 2.7 (Debian's `glewlwyd` package, an OpenID Provider written in C) as a second, independent
 * IdP for the interop suites: loopback, a free port, a throwaway SQLite database made from the schema
 * the package ships, configured through its admin REST API (an OIDC plugin instance, scopes, clients),
 * stopped by the test. Install with `bash scripts/ensure-glewlwyd.sh`.
 *
 *   const gl = await startGlewlwyd();
 *   ... gl.issuer, await gl.addClient({ client_id: "x", client_secret: "...", scope: ["api"] }) ...
 *   await gl.stop();
 */
import { Database } from "bun:sqlite";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportJWK, generateKeyPair } from "jose";
import { freePort } from "./gateway-process.ts";
import { SERVICE_SECRET } from "./idp-process.ts";

/** The SQLite schema and seed (admin user, g_admin scope, database backends) the package installs. */
const SCHEMA = "/usr/share/dbconfig-common/data/glewlwyd/install/sqlite3";
/** The package's seeded administrator. */
const ADMIN = { username: "admin", password: "password" };
/** The scope the seed clients get; Glewlwyd puts it in the access token's `aud`. */
export const GLEWLWYD_SCOPE = "api";

interface GlewlwydClient {
  readonly client_id: string;
  /** Stored as is by Glewlwyd (a `password` would be hashed). */
  readonly client_secret?: string;
  readonly scope?: readonly string[];
  readonly authorization_type?: readonly string[];
  /** Default: client_secret_basic and client_secret_post with a secret, else private_key_jwt. */
  readonly token_endpoint_auth_method?: readonly string[];
  /** Public keys for private_key_jwt (Glewlwyd will not download an http `jwks_uri`). */
  readonly jwks?: { keys: unknown[] };
  /** For tls_client_auth: the subject DN Glewlwyd compares. */
  readonly tls_client_auth_subject_dn?: string;
  readonly [property: string]: unknown;
}

export interface GlewlwydProcess {
  readonly url: string;
  readonly port: number;
  readonly issuer: string;
  readonly tokenEndpoint: string;
  readonly introspectionEndpoint: string;
  readonly jwksUri: string;
  /** Everything Glewlwyd wrote, for failures. */
  readonly output: string[];
  addClient(client: GlewlwydClient): Promise<void>;
  /** A token straight from the token endpoint (client_secret_basic, `scope` sent). */
  token(clientId: string, secret: string, init?: { headers?: Record<string, string>; scope?: string }): Promise<Response>;
  stop(): Promise<void>;
}

export interface GlewlwydOptions {
  /** Serve https with this certificate, asking callers for a client certificate signed by `ca` (mutual TLS). */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string };
}

function configText(o: { port: number; url: string; db: string; tls?: GlewlwydOptions["tls"] }): string {
  const tls = o.tls
    ? `use_secure_connection=true\nsecure_connection_key_file="${o.tls.key}"\nsecure_connection_pem_file="${o.tls.cert}"\nsecure_connection_ca_file="${o.tls.ca}"\n`
    : "";
  return `port=${o.port}
bind_address="127.0.0.1"
external_url="${o.url}"
login_url="login.html"
api_prefix="api"
log_mode="console"
log_level="WARNING"
cookie_domain="127.0.0.1"
cookie_secure=0
session_expiration=3600
session_key="GLEWLWYD2_SESSION_ID"
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="/usr/lib/glewlwyd/user"
user_middleware_module_path="/usr/lib/glewlwyd/user_middleware"
client_module_path="/usr/lib/glewlwyd/client"
user_auth_scheme_module_path="/usr/lib/glewlwyd/scheme"
plugin_module_path="/usr/lib/glewlwyd/plugin"
${tls}hash_algorithm="SHA512"
database = { type = "sqlite3" path = "${o.db}" };
`;
}

/** The OIDC plugin instance: client credentials, introspection for the token's own client, DPoP, mTLS. */
function oidcPlugin(issuer: string, jwks: string, kid: string, tls: boolean) {
  return {
    module: "oidc",
    name: "oidc",
    display_name: "OpenID Connect",
    order_rank: 0,
    enabled: true,
    parameters: {
      iss: issuer,
      "jwks-private": jwks,
      "default-kid": kid,
      "jwt-type": "ecdsa",
      "jwt-key-size": "256",
      "access-token-duration": 3600,
      "refresh-token-duration": 1209600,
      "code-duration": 600,
      "refresh-token-rolling": true,
      "allow-non-oidc": true,
      "auth-type-code-enabled": true,
      "auth-type-token-enabled": false,
      "auth-type-id-token-enabled": true,
      "auth-type-none-enabled": true,
      "auth-type-password-enabled": false,
      "auth-type-client-enabled": true,
      "auth-type-device-enabled": false,
      "auth-type-refresh-enabled": true,
      scope: [],
      "additional-parameters": [],
      claims: [],
      "jwks-show": true,
      "jwks-x5c": [],
      "request-parameter-allow": true,
      "secret-type": "pairwise",
      "address-claim": { type: "no", formatted: "", street_address: "", locality: "", region: "", postal_code: "", country: "", mandatory: false },
      "name-claim": "no",
      "email-claim": "no",
      "scope-claim": "no",
      "allowed-scope": ["openid", GLEWLWYD_SCOPE],
      "introspection-revocation-allowed": true,
      "introspection-revocation-auth-scope": [],
      "introspection-revocation-allow-target-client": true,
      "client-pubkey-parameter": "",
      "client-jwks-parameter": "jwks",
      "client-jwks_uri-parameter": "jwks_uri",
      "request-maximum-exp": 3600,
      "client-cert-source": tls ? "TLS" : "none",
      "client-cert-use-endpoint-aliases": false,
      "client-cert-self-signed-allowed": false,
      "oauth-dpop-allowed": true,
      "oauth-dpop-iat-duration": 60,
      "register-client-allowed": false,
      "session-management-allowed": false,
    },
  };
}

export async function startGlewlwyd(options: GlewlwydOptions = {}): Promise<GlewlwydProcess> {
  if (!existsSync(SCHEMA) || !Bun.which("glewlwyd")) throw new Error("glewlwyd is not installed: run `bash scripts/ensure-glewlwyd.sh`");
  const dir = mkdtempSync(join(tmpdir(), "glewlwyd-"));
  const db = join(dir, "glewlwyd.db");
  const sqlite = new Database(db, { create: true });
  sqlite.exec(readFileSync(SCHEMA, "utf8"));
  // The seed's client backend stores no `tls_client_auth_subject_dn`, the property tls_client_auth compares.
  const row = sqlite.query("SELECT gcmi_parameters AS p FROM g_client_module_instance WHERE gcmi_name = 'database'").get() as { p: string };
  const backend = JSON.parse(row.p);
  backend["data-format"].tls_client_auth_subject_dn = { multiple: false, read: true, write: true };
  sqlite.query("UPDATE g_client_module_instance SET gcmi_parameters = ? WHERE gcmi_name = 'database'").run(JSON.stringify(backend));
  sqlite.close();
  const port = await freePort();
  const scheme = options.tls ? "https" : "http";
  // The host name must match the certificate's for https (the test certificates name localhost).
  const url = `${scheme}://${options.tls ? "localhost" : "127.0.0.1"}:${port}`;
  const configPath = join(dir, "glewlwyd.conf");
  writeFileSync(configPath, configText({ port, url, db, ...(options.tls ? { tls: options.tls } : {}) }));

  const output: string[] = [];
  const proc = Bun.spawn(["glewlwyd", "--config-file", configPath], { stdout: "pipe", stderr: "pipe" });
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const bytes of stream) output.push(...decoder.decode(bytes).split("\n").filter(Boolean));
  };
  void pump(proc.stdout);
  void pump(proc.stderr);
  const tlsInit = options.tls ? { tls: { ca: readFileSync(options.tls.ca, "utf8") } } : {};
  const call = (path: string, init: RequestInit = {}) => fetch(`${url}${path}`, { ...init, ...tlsInit } as RequestInit);

  const stop = async () => {
    proc.kill("SIGTERM");
    const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(3000).then(() => false)]);
    if (!exited) proc.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  };
  const fail = async (what: string): Promise<never> => {
    await stop();
    throw new Error(`glewlwyd: ${what}\n${output.join("\n")}`);
  };

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) await fail(`exited with ${proc.exitCode}`);
    try {
      if ((await call("/config")).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) await fail("did not start within 15 s");
    await Bun.sleep(50);
  }

  const login = await call("/api/auth/", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(ADMIN) });
  const cookie = login.headers.get("set-cookie")?.split(";")[0];
  if (!login.ok || !cookie) await fail(`admin login answered ${login.status}`);
  const admin = async (method: string, path: string, body: unknown) => {
    const res = await call(`/api${path}`, { method, headers: { "content-type": "application/json", cookie: cookie! }, body: JSON.stringify(body) });
    if (!res.ok) await fail(`${method} /api${path} answered ${res.status} ${await res.text()}`);
  };

  const issuer = `${url}/api/oidc`;
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const kid = "glewlwyd-test";
  const jwk = { ...(await exportJWK(privateKey)), kid, alg: "ES256", use: "sig" };
  await admin("POST", "/mod/plugin/", oidcPlugin(issuer, JSON.stringify({ keys: [jwk] }), kid, options.tls !== undefined));
  await admin("POST", "/scope/", {
    name: GLEWLWYD_SCOPE,
    display_name: GLEWLWYD_SCOPE,
    description: "the test API",
    password_required: false,
    scheme: {},
  });

  const addClient = async (c: GlewlwydClient) => {
    const { client_id, scope, authorization_type, token_endpoint_auth_method, ...rest } = c;
    await admin("POST", "/client/", {
      client_id,
      name: client_id,
      enabled: true,
      confidential: true,
      redirect_uri: [],
      scope: scope ?? [GLEWLWYD_SCOPE],
      authorization_type: authorization_type ?? ["client_credentials"],
      // Glewlwyd refuses every method not listed here (a 403 with an empty body).
      token_endpoint_auth_method:
        token_endpoint_auth_method ?? (c.client_secret !== undefined ? ["client_secret_basic", "client_secret_post"] : ["private_key_jwt"]),
      ...rest,
    });
  };
  // The README's client, with the README's secret.
  await addClient({ client_id: "service", client_secret: SERVICE_SECRET });

  return {
    url,
    port,
    issuer,
    tokenEndpoint: `${issuer}/token`,
    introspectionEndpoint: `${issuer}/introspect`,
    jwksUri: `${issuer}/jwks`,
    output,
    addClient,
    token: (clientId, secret, init = {}) =>
      call("/api/oidc/token", {
        method: "POST",
        headers: { authorization: `Basic ${btoa(`${clientId}:${secret}`)}`, "content-type": "application/x-www-form-urlencoded", ...init.headers },
        body: new URLSearchParams({ grant_type: "client_credentials", scope: init.scope ?? GLEWLWYD_SCOPE }).toString(),
      }),
    stop,
  };
}
