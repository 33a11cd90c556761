/**
 * The gateway's own identity: the private keys it signs client assertions with
 * (`private_key_jwt`), and the public JWKS an IdP downloads to verify them.
 *
 * A `KeyStore` hides where the keys live (a file for one gateway, Redis for a fleet): plugins
 * ask it for a signing key, the admin API for the public JWKS and for a rotation. Every method
 * is asynchronous so a shared store can load or refresh behind it; none is on a request's hot
 * path (a signing key is needed only when a token is fetched).
 */
import type { SigningAlgorithm } from "./jwk.ts";

export interface SigningKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  /** Non-extractable private key. */
  readonly privateKey: CryptoKey;
}

/** Which key to sign with: the current key for `alg`, or the key `kid` (which must have `alg`). */
export interface KeySelector {
  readonly alg: SigningAlgorithm;
  readonly kid?: string | undefined;
}

/** The published JWKS, serialised once per change. */
export interface PublicJwks {
  /** `{"keys":[...]}`: the current keys, then retired ones still in their grace period; public members only. */
  readonly body: string;
  /** Bytes of `body` (UTF-8), for `content-length` of a `HEAD`. */
  readonly length: number;
  /** A strong validator of `body`, for `If-None-Match`. */
  readonly etag: string;
  readonly kids: readonly string[];
}

export interface Rotation {
  /** The new signing keys. */
  readonly kids: readonly string[];
  /** The keys they replace: still published until `retiredUntil`. */
  readonly retired: readonly string[];
  /** Epoch ms. */
  readonly retiredUntil: number;
}

export interface RotateOptions {
  /** A compromised key: the new keys sign at once, the old ones never again. */
  readonly immediate?: boolean;
}

export interface KeyStore {
  /** Where the keys live, for logs and errors (e.g. `file "/etc/gateway/jwks.json"`). */
  readonly description: string;
  /**
   * Loads the keys that exist, once, at start. An unusable store (unreadable or invalid file)
   * throws `KeyStoreError`; a missing one is not an error: keys are generated on first need.
   */
  open(): Promise<void>;
  /** The key to sign with; generates the missing ones. Throws `KeyStoreError` when none fits. */
  signingKey(select: KeySelector): Promise<SigningKey>;
  /** The public JWKS; generates the keys when there are none yet. */
  publicJwks(): Promise<PublicJwks>;
  /**
   * New keys (one per algorithm in use), published at once; the previous keys keep signing until
   * the JWKS is fetched or the signing delay passes (`immediate`: never again), and stay
   * published for the grace period. Survives a restart.
   */
  rotate(options?: RotateOptions): Promise<Rotation>;
  /** The key the last rotation retired for `alg`, while it is published: for one retry after an `invalid_client`. */
  previousSigningKey(select: KeySelector): Promise<SigningKey | undefined>;
  /** The public JWKS `served` was served (an IdP fetched it): the current keys it publishes may sign now. */
  jwksServed(served: PublicJwks): void;
  /** Stops watching for changes. */
  close(): void;
}
