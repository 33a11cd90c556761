/**
 * Discovery and JWKS per issuer, shared by every plugin instance of a gateway
 * (`issuerRegistry(ctx)`), in the spirit of jose's `createRemoteJWKSet`:
 *
 * - fetched at start; an IdP that is down at start is retried in the background with backoff,
 *   and callers fail fast with the last error in between (they never queue behind a dead IdP);
 * - older than `rediscovery_lifetime`, the metadata is refreshed in the background on next use,
 *   and a failed refresh keeps what we had (stale keys beat no keys);
 * - a token with an unknown `kid` triggers at most one refetch per `rediscovery_lifetime`, so
 *   random `kid`s cannot make us hammer the IdP;
 * - the discovered `issuer` must equal the configured one exactly (OpenID Connect Discovery §4.3),
 *   otherwise the issuer is unusable and every use says why.
 */
import { createLocalJWKSet, errors as joseErrors, type FlattenedJWSInput, type JSONWebKeySet, type JWK, type JWSHeaderParameters } from "jose";
import type { AuthorizationServer } from "oauth4webapi";
import { IdpError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import type { Metrics } from "../../metrics.ts";
import type { FetchLike } from "../../runtime/types.ts";
import type { Shared } from "../../lib/shared.ts";
import { proxyKey, type ForwardProxy } from "./forward-proxy.ts";
import { createIdpFetch, getJson, type OutboundContext } from "./outbound.ts";
import { timedIdpCall } from "./timed-call.ts";
import { PRIVATE_JWK_MEMBERS } from "../../lib/jwa.ts";

export interface IssuerSettings {
  /** The configured `issuer`: an issuer identifier, or the URL of its discovery document. */
  readonly issuer: string;
  /** Outbound timeout (ms). */
  readonly timeout: number;
  readonly sslVerify: boolean;
  /** `rediscovery_lifetime` (s). */
  readonly rediscoveryLifetime: number;
  /** Forward proxies for the calls to this issuer. */
  readonly proxy?: ForwardProxy | undefined;
  /** Kong's `jwks_endpoint`: the keys' URL instead of the discovered `jwks_uri`. */
  readonly jwksEndpoint?: string | undefined;
  /** Kong's `discovery_headers_names`/`_values`: headers sent with the discovery request. */
  readonly discoveryHeaders?: Readonly<Record<string, string>> | undefined;
}

export interface IssuerMetadata {
  readonly discovery: Readonly<AuthorizationServer>;
  readonly jwks: Readonly<JSONWebKeySet>;
  /** Epoch ms of the last successful fetch. */
  readonly updatedAt: number;
}

/** What `GET /openid-connect/issuers` shows for one issuer. */
export interface IssuerView {
  readonly id: string;
  readonly issuer: string;
  readonly configuration: Readonly<AuthorizationServer> | null;
  readonly keys: readonly JWK[];
  /** Epoch seconds of the last successful discovery, as Kong reports it. */
  readonly updated_at: number | null;
  /** Why the issuer is not usable right now (no secrets: endpoint and status only). */
  readonly error?: string;
}

type KeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

interface Loaded {
  readonly meta: IssuerMetadata;
  readonly keys: KeyResolver;
  readonly jwksText: string;
}

const WELL_KNOWN = ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"];
/** Between two on-demand attempts while the IdP is down, callers get the last error at once. */
const ON_DEMAND_RETRY_MS = 1000;
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 60_000;
/** Start waits at most this long for the first discovery; a black-holed IdP must not hold the listeners. */
const START_WAIT_MS = 3000;
/** The same failure is logged at most this often. */
const LOG_REPEAT_MS = 30_000;
const PRIVATE_MEMBERS = new Set(PRIVATE_JWK_MEMBERS);

/** Kong accepts the discovery URL as `issuer`; the issuer identifier is then its prefix. */
export function splitIssuer(configured: string): { issuer: string; discoveryUrl: string } {
  for (const suffix of WELL_KNOWN) {
    if (configured.endsWith(suffix)) return { issuer: configured.slice(0, -suffix.length), discoveryUrl: configured };
  }
  // OpenID Connect Discovery §4: remove a terminating "/" before appending the well-known path.
  return { issuer: configured, discoveryUrl: `${configured.replace(/\/$/, "")}${WELL_KNOWN[0]}` };
}

function publicJwk(jwk: JWK): JWK {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(jwk)) if (!PRIVATE_MEMBERS.has(k)) out[k] = v;
  return out as JWK;
}

export interface IssuerDeps {
  readonly fetch: FetchLike;
  readonly log: Logger;
  readonly metrics?: Pick<Metrics, "idp"> | undefined;
  readonly now?: () => number;
}

export class Issuer {
  /** Stable id for the admin API (derived from the issuer and its settings). */
  readonly id: string;
  /** The issuer identifier tokens must carry in `iss`. */
  readonly issuer: string;
  readonly discoveryUrl: string;
  /** True when the issuer is plain http (development): oauth4webapi must be told so. */
  readonly allowHttp: boolean;
  readonly settings: IssuerSettings;
  /** The outbound fetch for this IdP (timeout, trust store); also for its token endpoint. */
  readonly fetch: FetchLike;

  private readonly log: Logger;
  private readonly metrics: Pick<Metrics, "idp"> | undefined;
  private readonly now: () => number;
  private readonly lifetimeMs: number;
  private loaded: Loaded | undefined;
  private inflight: Promise<Loaded> | undefined;
  private lastAttemptAt = -Infinity;
  private lastKidRefetchAt = -Infinity;
  private lastError: IdpError | undefined;
  private lastLogged: { detail: string; at: number } | undefined;
  private backoff = BACKOFF_MIN_MS;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(id: string, settings: IssuerSettings, deps: IssuerDeps) {
    this.id = id;
    this.settings = settings;
    const { issuer, discoveryUrl } = splitIssuer(settings.issuer);
    this.issuer = issuer;
    this.discoveryUrl = discoveryUrl;
    this.allowHttp = discoveryUrl.startsWith("http:");
    this.fetch = deps.fetch;
    this.log = deps.log;
    this.metrics = deps.metrics;
    this.now = deps.now ?? Date.now;
    this.lifetimeMs = settings.rediscoveryLifetime * 1000;
  }

  /** The metadata if loaded, without waiting. Stale metadata starts a background refresh. */
  peek(): IssuerMetadata | undefined {
    const loaded = this.loaded;
    if (!loaded) return undefined;
    const now = this.now();
    if (!this.inflight && now - loaded.meta.updatedAt >= this.lifetimeMs && now - this.lastAttemptAt >= this.lifetimeMs) {
      this.load().catch(() => {}); // logged by load; we keep serving what we have
    }
    return loaded.meta;
  }

  /** The metadata, fetched if needed. Throws `IdpError` when the IdP cannot be used. */
  async metadata(): Promise<IssuerMetadata> {
    const meta = this.peek();
    if (meta) return meta;
    if (this.inflight) return (await this.inflight).meta;
    if (this.lastError && this.now() - this.lastAttemptAt < ON_DEMAND_RETRY_MS) throw this.lastError;
    return (await this.load()).meta;
  }

  /**
   * jose's key resolver (`jwtVerify(token, issuer.getKey, ...)`): the IdP's key for the token's
   * `kid`/`alg`; an unknown `kid` refetches the keys at most once per `rediscovery_lifetime`.
   */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> => {
    if (!this.loaded) await this.metadata();
    const current = this.loaded;
    if (!current) throw new IdpError("unreachable", `the keys of ${this.issuer} are not loaded`);
    try {
      return await current.keys(header, token);
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw error;
      if (this.inflight) {
        await this.inflight.catch(() => {});
      } else if (this.now() - this.lastKidRefetchAt >= this.lifetimeMs) {
        this.lastKidRefetchAt = this.now();
        this.log.info("oidc.jwks_refetch", {
          issuer: this.issuer,
          reason: "unknown kid",
          kid: typeof header.kid === "string" ? header.kid.slice(0, 64) : null,
        });
        await this.load();
      } else {
        throw error;
      }
      const loaded = this.loaded;
      if (!loaded) throw error;
      return loaded.keys(header, token);
    }
  };

  /**
   * Fetch at start: the first attempt is awaited (at most a few seconds; requests that come
   * earlier wait for it), and a failure is retried in the background with backoff.
   */
  async start(): Promise<void> {
    this.stopped = false;
    if (this.loaded || this.retryTimer || this.inflight) return;
    const first = this.load().then(
      () => {},
      () => this.scheduleRetry(),
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([first, new Promise((resolve) => (timer = setTimeout(resolve, Math.min(this.settings.timeout, START_WAIT_MS))))]);
    clearTimeout(timer);
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** `DELETE /openid-connect/issuers`: drop everything; the next use rediscovers at once. */
  forget(): void {
    this.loaded = undefined;
    this.lastError = undefined;
    this.lastAttemptAt = -Infinity;
    this.lastKidRefetchAt = -Infinity;
    this.backoff = BACKOFF_MIN_MS;
  }

  view(): IssuerView {
    const loaded = this.loaded;
    return {
      id: this.id,
      issuer: this.issuer,
      configuration: loaded?.meta.discovery ?? null,
      keys: loaded ? loaded.meta.jwks.keys.map(publicJwk) : [],
      updated_at: loaded ? Math.floor(loaded.meta.updatedAt / 1000) : null,
      ...(!loaded && this.lastError ? { error: this.lastError.detail ?? this.lastError.publicMessage } : {}),
    };
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    const delay = this.backoff;
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.stopped || this.loaded) return;
      this.load().then(
        () => {},
        () => this.scheduleRetry(),
      );
    }, delay);
  }

  /** One discovery + JWKS fetch, shared by everyone who needs it meanwhile (single flight). */
  private load(): Promise<Loaded> {
    if (this.inflight) return this.inflight;
    this.lastAttemptAt = this.now();
    const attempt = this.fetchMetadata().then(
      (loaded) => {
        const first = !this.loaded;
        const keysChanged = this.loaded?.jwksText !== loaded.jwksText;
        this.loaded = loaded;
        this.lastError = undefined;
        this.lastLogged = undefined;
        this.backoff = BACKOFF_MIN_MS;
        if (first || keysChanged) {
          this.log.info("oidc.issuer_loaded", {
            issuer: this.issuer,
            keys: loaded.meta.jwks.keys.length,
            kids: loaded.meta.jwks.keys.map((k) => k.kid ?? null),
          });
        }
        return loaded;
      },
      (error: unknown) => {
        const failure = error instanceof IdpError ? error : new IdpError("bad_response", `discovery of ${this.issuer} failed`, { cause: error });
        this.lastError = failure;
        this.logFailure(failure);
        throw failure;
      },
    );
    this.inflight = attempt.finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private logFailure(error: IdpError): void {
    const now = this.now();
    const detail = error.detail ?? error.code;
    if (this.lastLogged && this.lastLogged.detail === detail && now - this.lastLogged.at < LOG_REPEAT_MS) return;
    this.lastLogged = { detail, at: now };
    const fields = { issuer: this.issuer, code: error.code, detail, stale_metadata: !!this.loaded };
    if (this.loaded) this.log.warn("oidc.issuer_refresh_failed", fields);
    else this.log.error("oidc.issuer_unavailable", fields);
  }

  private async fetchMetadata(): Promise<Loaded> {
    const { timeout } = this.settings;
    const extra = this.settings.discoveryHeaders;
    const discoveryFetch: FetchLike = extra
      ? (input, init) => this.fetch(input, { ...init, headers: { ...Object.fromEntries(new Headers(init?.headers)), ...extra } })
      : this.fetch;
    const { json } = await timedIdpCall(this.metrics, "discovery", () => getJson(discoveryFetch, this.discoveryUrl, "discovery document", timeout));
    const discovery = this.checkDiscovery(json);
    let jwks: JSONWebKeySet = { keys: [] };
    let jwksText = "";
    const jwksUri = this.settings.jwksEndpoint ?? discovery.jwks_uri;
    if (typeof jwksUri === "string") {
      const uri = jwksUri;
      const got = await timedIdpCall(this.metrics, "jwks", () => getJson(this.fetch, uri, "JWKS", timeout));
      if (!Array.isArray(got.json.keys)) throw new IdpError("bad_response", `JWKS at ${uri} has no "keys" array`);
      jwks = got.json as unknown as JSONWebKeySet;
      jwksText = got.text;
    }
    let keys: KeyResolver;
    if (this.loaded && this.loaded.jwksText === jwksText) {
      keys = this.loaded.keys; // unchanged: keep the imported keys
    } else {
      try {
        keys = createLocalJWKSet(jwks) as unknown as KeyResolver;
      } catch (error) {
        throw new IdpError("bad_response", `JWKS at ${jwksUri} is malformed`, { cause: error });
      }
    }
    return { meta: { discovery, jwks, updatedAt: this.now() }, keys, jwksText };
  }

  private checkDiscovery(json: Record<string, unknown>): AuthorizationServer {
    if (typeof json.issuer !== "string") throw new IdpError("bad_response", `discovery document at ${this.discoveryUrl} has no "issuer"`);
    if (json.issuer !== this.issuer) {
      throw new IdpError("misconfigured", `the discovered issuer "${json.issuer}" does not equal the configured 'issuer' "${this.issuer}"`);
    }
    for (const name of ["token_endpoint", "jwks_uri", "introspection_endpoint", "userinfo_endpoint"]) {
      const value = json[name];
      if (value === undefined) continue;
      let url: URL | undefined;
      try {
        url = typeof value === "string" ? new URL(value) : undefined;
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== "https:" && !(this.allowHttp && url.protocol === "http:"))) {
        throw new IdpError("bad_response", `discovery document of ${this.issuer} has an unusable "${name}"`);
      }
    }
    return json as unknown as AuthorizationServer;
  }
}

/** What issuers need of the gateway: the IdP client, a log, and optionally metrics of IdP calls. */
export interface IssuerContext extends OutboundContext {
  readonly log: Logger;
  readonly metrics?: Pick<Metrics, "idp">;
}

/** All issuers of one gateway, shared by plugin instances through `ctx.shared`. */
export class IssuerRegistry {
  private readonly entries = new Map<string, { issuer: Promise<Issuer>; users: number }>();
  private ready: Issuer[] = [];
  constructor(private readonly ctx: IssuerContext) {}

  /** The shared `Issuer` for these settings (one per distinct settings), started on first use. */
  async acquire(settings: IssuerSettings): Promise<Issuer> {
    const key = `${settings.issuer}\n${settings.sslVerify}\n${settings.timeout}\n${settings.rediscoveryLifetime}\n${proxyKey(settings.proxy)}\n${settings.jwksEndpoint ?? ""}\n${JSON.stringify(settings.discoveryHeaders ?? {})}`;
    let entry = this.entries.get(key);
    if (!entry) {
      const created = (async () => {
        const issuer = new Issuer(await stableId(key), settings, {
          fetch: createIdpFetch(this.ctx, { timeout: settings.timeout, sslVerify: settings.sslVerify, proxy: settings.proxy }),
          log: this.ctx.log,
          metrics: this.ctx.metrics,
        });
        this.ready.push(issuer);
        return issuer;
      })();
      entry = { issuer: created, users: 0 };
      this.entries.set(key, entry);
    }
    entry.users++;
    const issuer = await entry.issuer;
    await issuer.start();
    return issuer;
  }

  /**
   * A plugin instance is done with `issuer` (shutdown, or a reload that changed its entry); the
   * last user stops its retries and removes it from the admin API.
   */
  release(issuer: Issuer): void {
    for (const [key, entry] of this.entries) {
      void entry.issuer.then((i) => {
        if (i !== issuer || --entry.users > 0) return;
        i.stop();
        this.entries.delete(key);
        this.ready = this.ready.filter((r) => r !== i);
      });
    }
  }

  list(): readonly Issuer[] {
    return this.ready;
  }

  /** By admin id, or by issuer identifier (several when settings differ). */
  find(idOrIssuer: string): Issuer[] {
    return this.ready.filter((i) => i.id === idOrIssuer || i.issuer === idOrIssuer || i.settings.issuer === idOrIssuer);
  }
}

export function issuerRegistry(ctx: IssuerContext & { readonly shared: Shared }): IssuerRegistry {
  return ctx.shared.once("oidc.issuers", () => new IssuerRegistry(ctx));
}

/** A UUID-shaped id from SHA-256, stable across restarts for the same settings. */
async function stableId(key: string): Promise<string> {
  const hex = [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)))]
    .slice(0, 16)
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
