/**
 * Values in Redis are sealed: AES-256-GCM under a key derived (HKDF-SHA-256) from the secret
 * every node shares (`cache_tokens_salt` for tokens), with the Redis key as additional data, so
 * whoever reads Redis sees neither tokens nor claims, and an entry copied under another key
 * does not open. A fresh 96-bit IV per value; values are sealed only on the cold path.
 *
 *   byte 0: format version (1) | 12 bytes IV | ciphertext and 16-byte tag
 */

export interface Sealer {
  seal(plaintext: string, key: string): Promise<Uint8Array>;
  /** The plaintext, or undefined when the value was not sealed by this secret for this key. */
  open(sealed: Uint8Array, key: string): Promise<string | undefined>;
}

const VERSION = 1;
const IV_BYTES = 12;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `purpose` separates the keys derived from one secret (tokens, keys, ...). */
export async function createSealer(secret: string | Uint8Array, purpose: string): Promise<Sealer> {
  const ikm = typeof secret === "string" ? encoder.encode(secret) : secret;
  const base = await crypto.subtle.importKey("raw", ikm as Uint8Array<ArrayBuffer>, "HKDF", false, ["deriveKey"]);
  const key = await crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: encoder.encode("oidc-gateway cluster v1"), info: encoder.encode(purpose) },
    base,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
  return {
    async seal(plaintext, redisKey) {
      const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
      const ct = new Uint8Array(
        await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: encoder.encode(redisKey) }, key, encoder.encode(plaintext)),
      );
      const out = new Uint8Array(1 + IV_BYTES + ct.length);
      out[0] = VERSION;
      out.set(iv, 1);
      out.set(ct, 1 + IV_BYTES);
      return out;
    },
    async open(sealed, redisKey) {
      if (sealed.length < 1 + IV_BYTES + 16 || sealed[0] !== VERSION) return undefined;
      try {
        const pt = await crypto.subtle.decrypt(
          { name: "AES-GCM", iv: sealed.slice(1, 1 + IV_BYTES), additionalData: encoder.encode(redisKey) },
          key,
          sealed.slice(1 + IV_BYTES),
        );
        return decoder.decode(pt);
      } catch {
        return undefined;
      }
    },
  };
}
