/**
 * What both key stores (the file of one gateway, src/keys/file-store.ts, and the fleet's Redis,
 * src/cluster/key-store.ts) do with a key set alike: generate a key, hand one out for signing,
 * and serialise the public JWKS they publish.
 */
import { generateJwk, importPrivateKey, publicView, type SigningAlgorithm } from "./jwk.ts";
import type { CurrentKey, KeySet } from "./jwks-file.ts";
import type { PublicJwks, SigningKey } from "./types.ts";

export function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export async function generateKey(alg: SigningAlgorithm): Promise<CurrentKey> {
  const jwk = (await generateJwk(alg)) as CurrentKey["jwk"];
  return { jwk, privateKey: await importPrivateKey(jwk) };
}

export function toSigningKey(key: CurrentKey): SigningKey {
  return { kid: key.jwk.kid, alg: key.jwk.alg, privateKey: key.privateKey };
}

/** The JWKS a store publishes for `set` at `now`, and until when it stays right (the next retired key's end). */
export interface PublishedJwks {
  readonly jwks: PublicJwks;
  /** Epoch ms. */
  readonly until: number;
}

/** Serialises the public JWKS of `set` once (per change, and when a retired key's time is up): current keys, then retired ones still in their grace period. */
export async function publishJwks(set: KeySet, now: number): Promise<PublishedJwks> {
  const retired = set.retired.filter((r) => r.until > now);
  const keys = [...set.current.map((k) => publicView(k.jwk)), ...retired.map((r) => r.jwk)];
  const body = JSON.stringify({ keys });
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)));
  return {
    jwks: { body, etag: `"${base64url(digest).slice(0, 27)}"`, kids: keys.map((k) => k.kid!) },
    until: retired.length ? Math.min(...retired.map((r) => r.until)) : Infinity,
  };
}
