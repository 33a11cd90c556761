/**
 * The test IdP (test/support/idp/, oidc-provider on Node) as a child process, driven through its
 * `/__control` endpoints. Node, not Bun: that is where oidc-provider is supported.
 *
 *   const idp = await startIdpProcess({ accessTokenTtl: 2 });
 *   ... idp.issuer, (await idp.stats()).token.total, await idp.rotateKeys() ...
 *   await idp.stop();
 */
import { join, resolve } from "node:path";
import { cert, ensureCerts } from "./certs.ts";

const MAIN = resolve(import.meta.dir, "idp/main.mjs");

export const SERVICE_SECRET = "cf4c655a-0622-4ce6-a0de-d3353ef0b714";

interface IdpStats {
  token: { total: number; byClient: Record<string, number>; byGrant: Record<string, number>; byStatus: Record<string, number> };
  discovery: number;
  jwks: number;
  introspection: number;
  /** The last introspection request's `x-*` headers and form parameters (without the token and client secret). */
  lastIntrospection?: { headers: Record<string, string>; params: Record<string, unknown> };
  /** The last token request's URL (path and query), `x-*` headers and form parameters (without secrets and passwords). */
  lastToken?: { url: string; headers: Record<string, string>; params: Record<string, unknown> };
  /** Downloads of a client's `jwks_uri` (private_key_jwt), by client id. */
  clientJwksFetches: Record<string, number>;
}

type IdpTarget = "token" | "discovery" | "jwks" | "introspection" | "revocation" | "userinfo" | "all";

export interface IdpProcess {
  readonly issuer: string;
  /** Origin of the IdP (control endpoints live here). */
  readonly url: string;
  readonly port: number;
  readonly tokenEndpoint: string;
  readonly jwksUri: string;
  /** stderr lines, for failures. */
  readonly errors: string[];
  stats(): Promise<IdpStats>;
  resetStats(): Promise<void>;
  rotateKeys(options?: { alg?: string; dropOld?: boolean }): Promise<{ kid: string; kids: string[] }>;
  /** Fail the next `count` requests to `targets` with `status` (0 drops the connection). */
  fail(status: number, options?: { count?: number; targets?: IdpTarget[] }): Promise<void>;
  delay(ms: number, options?: { count?: number; targets?: IdpTarget[] }): Promise<void>;
  /** Ends injected failures and delays. */
  normal(): Promise<void>;
  setAccessTokenTtl(seconds: number): Promise<void>;
  addClient(metadata: Record<string, unknown>): Promise<void>;
  /** Forget a client's downloaded JWKS: the next private_key_jwt assertion re-downloads its `jwks_uri`. */
  refreshClientJwks(clientId?: string): Promise<void>;
  /** A token straight from the token endpoint (client credentials, client_secret_basic). */
  token(clientId: string, secret: string, options?: TokenRequestOptions): Promise<TokenResponse>;
  stop(): Promise<void>;
}

export interface TokenRequestOptions {
  readonly scope?: string;
  /** A DPoP proof of the token request (RFC 9449 §5): the token comes back DPoP-bound. */
  readonly dpop?: string;
  /** The client certificate to present to an IdP over mTLS (RFC 8705: the token is bound to it). */
  readonly clientCert?: { readonly cert: string; readonly key: string };
}

export interface TokenResponse {
  readonly access_token: string;
  readonly token_type: string;
  readonly expires_in?: number;
}

export interface IdpProcessOptions {
  /** Listen port (default 0 = random). */
  readonly port?: number;
  /** Any `startIdp()` option (test/support/idp/provider.mjs, IdpOptions). */
  readonly options?: Record<string, unknown>;
  /** PEM CA the control and token calls trust, for an IdP started with `options.tls`. */
  readonly ca?: string;
  /** HTTPS with client certificates, from the dev certificates (`make certs`), trusted by the control and token calls. */
  readonly devTls?: boolean;
}

/** The dev certificates as the IdP's `tls` option. */
function devTlsOptions(): Record<string, string> {
  const certs = ensureCerts();
  return { cert: join(certs, "gateway.crt"), key: join(certs, "gateway.key"), ca: join(certs, "ca.crt") };
}

export async function startIdpProcess(opts: IdpProcessOptions = {}): Promise<IdpProcess> {
  const args = ["node", MAIN, "--port", String(opts.port ?? 0)];
  const idpOptions = opts.devTls ? { ...opts.options, tls: devTlsOptions() } : opts.options;
  if (idpOptions) args.push("--options-json", JSON.stringify(idpOptions));
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "pipe" });
  const errors: string[] = [];
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) errors.push(...decoder.decode(chunk).split("\n").filter(Boolean));
  })();
  const reader = proc.stdout.getReader();
  let buffered = "";
  const deadline = Date.now() + 20_000;
  while (!buffered.includes("\n")) {
    const { done, value } = await Promise.race([
      reader.read(),
      Bun.sleep(Math.max(0, deadline - Date.now())).then(() => ({ done: true, value: undefined })),
    ]);
    if (done) {
      proc.kill();
      throw new Error(`the test IdP did not start:\n${errors.join("\n")}`);
    }
    buffered += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const ready = JSON.parse(buffered.slice(0, buffered.indexOf("\n"))) as {
    issuer: string;
    url: string;
    port: number;
    tokenEndpoint: string;
    jwksUri: string;
  };

  const ca = opts.ca ?? (opts.devTls ? cert("ca.crt") : undefined);
  const trust = (ca ? { tls: { ca: [ca] } } : {}) as RequestInit;
  const control = async (path: string, init?: RequestInit) => {
    const res = await fetch(`${ready.url}/__control${path}`, { method: "POST", ...init, ...trust });
    const body = await res.json();
    if (!res.ok) throw new Error(`IdP control ${path}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  };
  const scope = (o?: { count?: number; targets?: IdpTarget[] }) =>
    `${o?.count ? `&count=${o.count}` : ""}&target=${(o?.targets ?? ["token"]).join(",")}`;

  return {
    issuer: ready.issuer,
    url: ready.url,
    port: ready.port,
    tokenEndpoint: ready.tokenEndpoint,
    jwksUri: ready.jwksUri,
    errors,
    stats: () => control("/stats", { method: "GET" }),
    resetStats: async () => void (await control("/reset-stats")),
    rotateKeys: (o) => control(`/rotate-keys?${o?.alg ? `alg=${o.alg}&` : ""}${o?.dropOld ? "drop_old=1" : ""}`),
    fail: async (status, o) => void (await control(`/fail?status=${status}${scope(o)}`)),
    delay: async (ms, o) => void (await control(`/delay?ms=${ms}${scope(o)}`)),
    normal: async () => void (await control("/normal")),
    setAccessTokenTtl: async (seconds) => void (await control(`/access-token-ttl?seconds=${seconds}`)),
    addClient: async (metadata) =>
      void (await control("/clients", { body: JSON.stringify(metadata), headers: { "content-type": "application/json" } })),
    refreshClientJwks: async (clientId) =>
      void (await control(`/refresh-client-jwks${clientId ? `?client_id=${encodeURIComponent(clientId)}` : ""}`)),
    async token(clientId, secret, options = {}) {
      const res = await fetch(ready.tokenEndpoint, {
        ...(ca || options.clientCert ? { tls: { ...(ca ? { ca: [ca] } : {}), ...options.clientCert } } : {}),
        method: "POST",
        headers: {
          authorization: `Basic ${btoa(`${clientId}:${secret}`)}`,
          "content-type": "application/x-www-form-urlencoded",
          ...(options.dpop ? { dpop: options.dpop } : {}),
        },
        body: `grant_type=client_credentials${options.scope ? `&scope=${encodeURIComponent(options.scope)}` : ""}`,
      } as RequestInit);
      if (!res.ok) throw new Error(`token request for ${clientId}: ${res.status} ${await res.text()}`);
      return res.json();
    },
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}
