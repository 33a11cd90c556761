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
