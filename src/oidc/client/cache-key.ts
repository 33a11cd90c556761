/**
 * Cache keys are keyed hashes (HMAC-SHA-256 under a secret salt) of everything that decides the
 * cached value, credentials included. A raw secret never becomes a map key, a key leaks nothing
 * about the secret without the salt, and a wrong secret can never find the right one's token.
 */
import { base64url } from "../../lib/base64url.ts";

export type KeyedHash = (parts: readonly string[]) => Promise<string>;

/**
 * Joins parts so that no two different lists give the same string: each part is prefixed by its
 * length (a client id containing a separator cannot shift bytes into the next part).
 */
export function encodeParts(parts: readonly string[]): string {
  let out = "";
  for (const p of parts) out += `${p.length}:${p}`;
  return out;
}

const encoder = new TextEncoder();

/** A synchronous HMAC-SHA-256 from the runtime edge (`Runtime.hmacSha256`), when it has one. */
export type SyncHmac = (key: Uint8Array) => (data: string) => string;

/**
 * A keyed hash under `salt` (`cache_tokens_salt`), or under 32 random bytes when no salt is
 * configured (keys then live and die with the process, which is all an in-memory cache needs).
 * `sync` (the runtime's HMAC) is preferred: the same digests, without WebCrypto's async cost.
 */
export async function createKeyedHash(salt?: string, sync?: SyncHmac): Promise<KeyedHash> {
  const secret = salt !== undefined && salt !== "" ? encoder.encode(salt) : crypto.getRandomValues(new Uint8Array(32));
  if (sync) {
    const hmac = sync(secret);
    return (parts) => Promise.resolve(hmac(encodeParts(parts)));
  }
  const key = await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return async (parts) => base64url(new Uint8Array(await crypto.subtle.sign("HMAC", key, encoder.encode(encodeParts(parts)))));
}

/**
 * What a credentials header parses to (its token or credentials, and the cache key computed from
 * them), remembered under a keyed hash of the header's exact value: a caller sends the same
 * `Authorization` value on every request, so its parsing, checks and the cache key's HMAC over
 * the credentials run once per distinct value, and a request costs one HMAC of the header and a
 * map lookup. The map key is an HMAC under a random key of the memo's own (so its keys are apart
 * from every other hash), never the header (a Basic header carries a secret): lookups compare
 * digests only. Values hold nothing the token caches do not hold already (a bearer token, never
 * a client secret). Bounded, oldest first out.
 */
export class HeaderMemo<T> {
  readonly #values = new Map<string, T>();
  readonly #hash: (data: string) => string;
  readonly #max: number;

  /** `hmac` is the runtime's synchronous HMAC-SHA-256 (`Runtime.hmacSha256`). */
  constructor(hmac: SyncHmac, max: number) {
    this.#hash = hmac(crypto.getRandomValues(new Uint8Array(32)));
    this.#max = max;
  }

  get size(): number {
    return this.#values.size;
  }

  /** The memo's key of a header value: the header as it is, hashed without copying it into parts. */
  key(header: string): string {
    return this.#hash(header);
  }

  get(key: string): T | undefined {
    return this.#values.get(key);
  }

  set(key: string, value: T): void {
    if (this.#values.size >= this.#max && !this.#values.has(key)) this.#values.delete(this.#values.keys().next().value!);
    this.#values.set(key, value);
  }
}
