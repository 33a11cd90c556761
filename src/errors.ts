/**
 * Coded errors, thrown inside the gateway and turned into responses by one mapper
 * (`src/gateway/error-response.ts`). A class says what went wrong; the mapper says how it looks.
 * Every class has a `code` from `ErrorCode` (as jose's errors.ts): logs, metrics and tests match
 * on it, never on a message.
 */

import { errors as joseErrors } from "jose";

/** OAuth error codes a resource server answers with; see `OAuthErrorCode` below. */
type AuthErrorCode = `auth.${OAuthErrorCode | "missing_credentials"}`;

/** Every code an error of the gateway carries. */
export type ErrorCode =
  | "config.invalid"
  | "route.not_found"
  | "route.protocol"
  | "request.invalid"
  | "upstream.unavailable"
  | "upstream.timeout"
  | "upstream.no_healthy_target"
  | AuthErrorCode
  | "acl.denied"
  | "acl.unauthenticated"
  | "rate_limiting.store_unavailable"
  | `idp.${IdpFailure}`
  | "cluster.replay_store_unavailable"
  | "cluster.redis_unavailable"
  | `token.${AccessTokenFailure}`
  | "keys.invalid"
  | "keys.unavailable"
  | "internal.crypto";

/** An error with a code; its `name` is its class's. */
abstract class CodedError extends Error {
  /** A stable code for logs and metrics, e.g. `upstream.timeout`. */
  abstract readonly code: ErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A config that cannot be used (start, reload, `check`). `message` is what `check` prints. */
export class ConfigError extends CodedError {
  readonly code = "config.invalid";
}

export abstract class GatewayError extends CodedError {
  abstract readonly status: number;
  /** The Kong-style `message` callers see. */
  abstract readonly publicMessage: string;
  /** Extra detail, shown to callers only where a plugin enables `display_errors`. */
  readonly detail: string | undefined;
  /** True for our own failures (5xx): they are logged at error level. */
  get ours(): boolean {
    return this.status >= 500;
  }
  constructor(detail?: string, options?: { cause?: unknown }) {
    super(detail ?? new.target.name, options);
    this.detail = detail;
  }
}

/** A GatewayError class whose code, status and caller-facing message never vary (most of them). */
function fixedError<C extends ErrorCode>(name: string, code: C, status: number, publicMessage: string) {
  const fixed = class extends GatewayError {
    readonly code = code;
    readonly status = status;
    readonly publicMessage = publicMessage;
  };
  // The class's name is the error's `name` in logs, as for the classes written out.
  Object.defineProperty(fixed, "name", { value: name });
  return fixed;
}

export const NoRouteError = fixedError("NoRouteError", "route.not_found", 404, "no Route matched with those values");
export type NoRouteError = InstanceType<typeof NoRouteError>;

/**
 * The matched route does not allow the request's protocol (Kong: HTTPS-only route over HTTP,
 * or a WebSocket-only route without an upgrade): 426 with the `Upgrade` the route wants.
 */
export class UpgradeRequiredError extends GatewayError {
  readonly code = "route.protocol";
  readonly status = 426;
  readonly publicMessage: string;
  readonly responseHeaders: Readonly<Record<string, string>>;
  constructor(kind: "https" | "websocket") {
    super(kind === "https" ? "route requires https" : "route requires a WebSocket upgrade");
    this.publicMessage = kind === "https" ? "Please use HTTPS protocol" : "Please upgrade to WebSocket";
    this.responseHeaders = { connection: "Upgrade", upgrade: kind === "https" ? "TLS/1.2, HTTP/1.1" : "websocket" };
  }
}

export const UpstreamUnavailableError = fixedError(
  "UpstreamUnavailableError",
  "upstream.unavailable",
  502,
  "An invalid response was received from the upstream server",
);
export type UpstreamUnavailableError = InstanceType<typeof UpstreamUnavailableError>;

export const BadRequestError = fixedError("BadRequestError", "request.invalid", 400, "Bad request");
export type BadRequestError = InstanceType<typeof BadRequestError>;

export const UpstreamTimeoutError = fixedError("UpstreamTimeoutError", "upstream.timeout", 504, "The upstream server is timing out");
export type UpstreamTimeoutError = InstanceType<typeof UpstreamTimeoutError>;

/**
 * OAuth error codes a resource server answers with (RFC 6750 §3.1, RFC 9449 §7.1, §12.2; RFC 6749
 * §5.2 `invalid_client` for client credentials, `invalid_grant` for a user's wrong password).
 */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_token"
  | "insufficient_scope"
  | "invalid_dpop_proof"
  | "use_dpop_nonce"
  | "invalid_client"
  | "invalid_grant";

/** One `WWW-Authenticate` challenge; the mapper adds `error` and `error_description`. */
export interface Challenge {
  readonly scheme: "Bearer" | "DPoP" | "Basic";
  readonly params?: Readonly<Record<string, string>>;
}

export interface AuthErrorOptions {
  /** Challenges to send, in order (default: one `Bearer`). */
  readonly challenges?: readonly Challenge[];
  /** RFC 6750 error code; omitted when the request carried no credentials at all (§3.1). */
  readonly error?: OAuthErrorCode;
  readonly description?: string;
  /** Extra response headers (e.g. a fresh `DPoP-Nonce`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Scope the resource requires, for `insufficient_scope`. */
  readonly scope?: string;
  /** The body's `message` of a 403 (Kong's `forbidden_error_message`); default "Forbidden". */
  readonly forbiddenMessage?: string;
}

/** The caller's credentials are missing or wrong: 401, or 400/403 for the codes that say so. */
export class AuthError extends GatewayError {
  /** A copy with the plugin's challenges (realm, DPoP algs), keeping everything else. */
  withChallenges(challenges: readonly Challenge[]): AuthError {
    return new AuthError({
      error: this.error,
      description: this.description,
      headers: this.headers,
      scope: this.scope,
      challenges,
      forbiddenMessage: this.forbiddenMessage,
    } as AuthErrorOptions);
  }

  readonly code: AuthErrorCode;
  readonly status: number;
  readonly publicMessage: string;
  readonly error: OAuthErrorCode | undefined;
  readonly description: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly scope: string | undefined;
  readonly challenges: readonly Challenge[];
  readonly forbiddenMessage: string | undefined;
  constructor(options: AuthErrorOptions = {}) {
    super(options.description);
    this.challenges = options.challenges ?? [{ scheme: "Bearer" }];
    this.error = options.error;
    this.description = options.description;
    this.headers = options.headers ?? {};
    this.scope = options.scope;
    this.code = `auth.${options.error ?? "missing_credentials"}`;
    this.status = options.error === "invalid_request" ? 400 : options.error === "insufficient_scope" ? 403 : 401;
    this.forbiddenMessage = options.forbiddenMessage;
    this.publicMessage = this.status === 400 ? "Bad Request" : this.status === 403 ? (options.forbiddenMessage ?? "Forbidden") : "Unauthorized";
  }
}

/** The `acl` plugin refused the caller's groups (Kong's body). */
export const AccessDeniedError = fixedError("AccessDeniedError", "acl.denied", 403, "You cannot consume this service");
export type AccessDeniedError = InstanceType<typeof AccessDeniedError>;

/** A plugin that needs an authenticated caller found none (Kong's bare 401, no challenge: no authentication plugin asked). */
export const NotAuthenticatedError = fixedError("NotAuthenticatedError", "acl.unauthenticated", 401, "Unauthorized");
export type NotAuthenticatedError = InstanceType<typeof NotAuthenticatedError>;

/** The rate-limiting store (Redis) failed and `fault_tolerant` is off: our failure, Kong's 500. */
export const RateLimitStoreError = fixedError("RateLimitStoreError", "rate_limiting.store_unavailable", 500, "An unexpected error occurred");
export type RateLimitStoreError = InstanceType<typeof RateLimitStoreError>;

export type IdpFailure = "unreachable" | "timeout" | "bad_response" | "misconfigured";

/** The identity provider failed us (not the caller): never a 401. */
export class IdpError extends GatewayError {
  readonly code: `idp.${IdpFailure}`;
  readonly status: number;
  readonly publicMessage: string;
  readonly failure: IdpFailure;
  constructor(failure: IdpFailure, detail: string, options?: { cause?: unknown }) {
    super(detail, options);
    this.failure = failure;
    this.code = `idp.${failure}`;
    this.status = failure === "timeout" ? 504 : failure === "bad_response" ? 502 : 503;
    this.publicMessage =
      failure === "timeout"
        ? "The identity provider is timing out"
        : failure === "bad_response"
          ? "An invalid response was received from the identity provider"
          : "The identity provider is unavailable";
  }
}

/** Every target of the service's upstream has weight 0 or is unhealthy (Kong's words and status). */
export const NoHealthyPeerError = fixedError("NoHealthyPeerError", "upstream.no_healthy_target", 503, "failure to get a peer from the ring-balancer");
export type NoHealthyPeerError = InstanceType<typeof NoHealthyPeerError>;

/**
 * A signature check threw inside our runtime (node:crypto or WebCrypto answer false for any
 * malformed signature, on Bun and Deno): our failure, a logged 500, never the caller's 401.
 */
export const CryptoFailureError = fixedError("CryptoFailureError", "internal.crypto", 500, "An unexpected error occurred");
export type CryptoFailureError = InstanceType<typeof CryptoFailureError>;

/**
 * jose's "signature does not verify" that carries WebCrypto's throw as its cause, as our failure:
 * WebCrypto answers false for any bad signature, so a throw is never the signer's fault.
 */
export function webCryptoFailure(error: unknown, what: string): CryptoFailureError | undefined {
  if (error instanceof joseErrors.JWSSignatureVerificationFailed && error.cause !== undefined)
    return new CryptoFailureError(`WebCrypto's signature check of ${what} threw`, { cause: error.cause });
  return undefined;
}

/** DPoP requests refused because replays cannot be checked fleet-wide (`dpop_replay_fallback = "refuse"`). */
export const ReplayStoreUnavailableError = fixedError(
  "ReplayStoreUnavailableError",
  "cluster.replay_store_unavailable",
  503,
  "The service is temporarily unavailable",
);
export type ReplayStoreUnavailableError = InstanceType<typeof ReplayStoreUnavailableError>;

/** Thrown without a network call while Redis is known to be unreachable. */
export class RedisUnavailableError extends CodedError {
  readonly code = "cluster.redis_unavailable";
  constructor(reason: string | undefined) {
    super(`redis is unreachable${reason ? `: ${reason}` : ""}`);
  }
}

export type AccessTokenFailure =
  | "malformed"
  | "algorithm"
  | "signature"
  | "unknown_key"
  | "issuer"
  | "expired"
  | "not_yet_valid"
  | "issued_in_future"
  | "audience"
  | "type"
  | "claims";

/** An access token that does not verify; whose fault that is, the caller of the verifier decides. */
export class AccessTokenError extends CodedError {
  readonly code: `token.${AccessTokenFailure}`;
  readonly reason: AccessTokenFailure;
  constructor(reason: AccessTokenFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = `token.${reason}`;
    this.reason = reason;
  }
}

/** The key store cannot be used (bad file, no key for a selector): a start error at start. */
export class KeyStoreError extends CodedError {
  readonly code: "keys.invalid" | "keys.unavailable";
  /** The config key the problem is about, e.g. `keys.jwks_file` or `client_jwk`. */
  readonly setting: string;
  constructor(setting: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = new.target === KeyStoreUnavailableError ? "keys.unavailable" : "keys.invalid";
    this.setting = setting;
  }
}

/** The store that holds the keys cannot be reached (the fleet's Redis): a 503, never a 500. */
export class KeyStoreUnavailableError extends KeyStoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("cluster.redis_url", message, options);
  }
}
