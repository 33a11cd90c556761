/**
 * The peers `make bench` measures the gateway against, besides nginx (bench/lib/nginx.ts), each
 * with one worker like the reference, from Debian's packages (bench/lib/tools.ts installs them):
 * - HAProxy 2.6: a plain reverse proxy, and the same with `jwt_verify` (RS256 with a static
 *   public key; `alg`, `iss`, `aud` and `exp` checked in its config, HAProxy's documented recipe);
 * - Apache 2.4 + mod_auth_openidc: `AuthType oauth20` verifying the JWT locally against a static
 *   certificate (`OIDCOAuthVerifyCertFiles kid#file`), `iss` and `aud` required as claims.
 * Configs are written to the run's temp folder; nothing under /etc is touched.
 */
import { mkdirSync } from "node:fs";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnLogged, type Started } from "./proc.ts";

export interface JwtCheck {
  readonly issuer: string;
  readonly audience: string;
  /** PEM public key (HAProxy). */
  readonly publicKeyFile: string;
  /** X.509 certificate (Apache) and its key id. */
  readonly certFile: string;
  readonly kid: string;
}

export function haproxyConfig(port: number, upstreamPort: number, jwt?: JwtCheck): string {
  const checks = jwt
    ? `
  # HAProxy's recipe for OAuth bearer tokens (haproxy.com, "OAuth 2.0 authorization"), status 401.
  http-request deny deny_status 401 unless { req.hdr(authorization) -m beg -i "bearer " }
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
  http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('$.iss')
  http-request set-var(txn.aud) var(txn.bearer),jwt_payload_query('$.aud')
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
  http-request set-var(txn.now) date()
  http-request deny deny_status 401 unless { var(txn.alg) -m str RS256 }
  http-request deny deny_status 401 unless { var(txn.iss) -m str ${jwt.issuer} }
  http-request deny deny_status 401 unless { var(txn.aud) -m str ${jwt.audience} }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"${jwt.publicKeyFile}") -m int 1 }
  http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }`
    : "";
  return `global
  nbthread 1
  maxconn 4096

defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout http-keep-alive 120s
  option http-keep-alive
  option forwardfor
  http-reuse always

frontend bench
  bind 127.0.0.1:${port}${checks}
  default_backend upstream

backend upstream
  server upstream 127.0.0.1:${upstreamPort}
`;
}

export function startHaproxy(haproxy: string, dir: string, name: string, config: string, cpus?: string): Started {
  const file = join(dir, `${name}.cfg`);
  writeFileSync(file, config);
  // -db: foreground, no daemon; -W off: one process, measured as such.
  return spawnLogged(name, [haproxy, "-db", "-f", file], { dir, ...(cpus !== undefined ? { cpus } : {}) });
}

const MODULES = "/usr/lib/apache2/modules";

export function apacheConfig(dir: string, name: string, port: number, upstreamPort: number, jwt: JwtCheck): string {
  const run = join(dir, `${name}-run`);
  // World-readable: Apache's children run as www-data when started as root.
  mkdirSync(run, { recursive: true, mode: 0o755 });
  const asRoot = process.getuid?.() === 0;
  return `ServerRoot ${run}
DefaultRuntimeDir ${run}
PidFile ${join(run, "httpd.pid")}
ErrorLog ${join(dir, `${name}.error.log`)}
LogLevel warn
Listen 127.0.0.1:${port}
ServerName 127.0.0.1
${asRoot ? "User www-data\nGroup www-data" : ""}
LoadModule mpm_event_module ${MODULES}/mod_mpm_event.so
LoadModule authn_core_module ${MODULES}/mod_authn_core.so
LoadModule authz_core_module ${MODULES}/mod_authz_core.so
LoadModule authz_user_module ${MODULES}/mod_authz_user.so
LoadModule proxy_module ${MODULES}/mod_proxy.so
LoadModule proxy_http_module ${MODULES}/mod_proxy_http.so
LoadModule auth_openidc_module ${MODULES}/mod_auth_openidc.so

# One process (like nginx's one worker), enough threads for wrk's 50 connections.
StartServers 1
ServerLimit 1
ThreadLimit 128
ThreadsPerChild 128
MaxRequestWorkers 128
MinSpareThreads 1
MaxSpareThreads 128
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 120

OIDCCryptoPassphrase bench-${crypto.randomUUID()}
OIDCOAuthVerifyCertFiles ${jwt.kid}#${jwt.certFile}
OIDCOAuthRemoteUserClaim sub

ProxyPass / http://127.0.0.1:${upstreamPort}/ keepalive=On
<Location />
  AuthType oauth20
  <RequireAll>
    Require valid-user
    Require claim iss:${jwt.issuer}
    Require claim aud:${jwt.audience}
  </RequireAll>
</Location>
`;
}

export function startApache(apache: string, dir: string, name: string, config: string, cpus?: string): Started {
  const file = join(dir, `${name}.conf`);
  writeFileSync(file, config);
  return spawnLogged(name, [apache, "-f", file, "-DFOREGROUND"], { dir, ...(cpus !== undefined ? { cpus } : {}) });
}
