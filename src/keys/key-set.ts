/**
 * What both key stores (the file of one gateway, src/keys/file-store.ts, and the fleet's Redis,
 * src/cluster/key-store.ts) do with a key set alike: generate a key, pick the one to sign with,
 * rotate, and serialise the public JWKS they publish. The stores only add where the set lives.
 */
import { generateJwk, importPrivateKey, publicView, type SigningAlgorithm } from "./jwk.ts";
import type { CurrentKey, KeySet, RetiredKey } from "./jwks-file.ts";
import type { KeySelector, PublicJwks, Rotation, SigningKey } from "./types.ts";
import { base64url } from "../lib/base64url.ts";
import { KeyStoreError } from "../errors.ts";

async function generateKey(alg: SigningAlgorithm): Promise<CurrentKey> {
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
  const bytes = new TextEncoder().encode(body);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return {
    jwks: { body, length: bytes.length, etag: `"${base64url(digest).slice(0, 27)}"`, kids: keys.map((k) => k.kid!) },
    until: retired.length ? Math.min(...retired.map((r) => r.until)) : Infinity,
  };
}

/**
 * The key of `set` that `select` names; `undefined` when no current key has the algorithm (the
 * store then adds one). A `kid` that is not a current key, or has another algorithm, throws.
 * Within the signing delay after a rotation, the previous key for the algorithm signs.
 */
export function selectSigningKey(set: KeySet, select: KeySelector, description: string, now: number): SigningKey | undefined {
  if (select.kid !== undefined) {
    const key = set.current.find((k) => k.jwk.kid === select.kid);
    if (!key) {
      const retired = set.retired.some((r) => r.jwk.kid === select.kid);
      throw new KeyStoreError(
        "client_jwk",
        `no current key with "kid" "${select.kid}" in ${description}${retired ? " (a rotation retired it)" : ""}`,
      );
    }
    if (key.jwk.alg !== select.alg) throw new KeyStoreError("client_alg", `the key "${select.kid}" is a ${key.jwk.alg} key, not ${select.alg}`);
    return toSigningKey(key);
  }
  if (set.signingDelayUntil !== undefined && now < set.signingDelayUntil) {
    const previous = previousSigningKey(set, select.alg, now);
    if (previous) return previous;
  }
  const key = set.current.find((k) => k.jwk.alg === select.alg);
  return key ? toSigningKey(key) : undefined;
}

/** The key for `alg` the last rotation retired, while it is still published. */
export function previousSigningKey(set: KeySet, alg: SigningAlgorithm, now: number): SigningKey | undefined {
  const retired = set.retired.find((r) => r.signer && r.until > now && r.signer.jwk.alg === alg);
  return retired?.signer ? toSigningKey(retired.signer) : undefined;
}

/**
 * `set` once a JWKS that publishes its current keys was fetched after a rotation: they sign.
 * `undefined`: no change, also when `served` lacks one of them (it was answered before a later
 * rotation, so whoever fetched it cannot verify the new keys yet).
 */
export function endSigningDelay(set: KeySet, now: number, served: Pick<PublicJwks, "kids">): KeySet | undefined {
  if (set.signingDelayUntil === undefined || now >= set.signingDelayUntil) return undefined;
  if (!set.current.every((k) => served.kids.includes(k.jwk.kid))) return undefined;
  return { current: set.current, retired: set.retired };
}

/** `set` with a new key for `alg` added to its current keys. */
export async function addKeyFor(set: KeySet | undefined, alg: SigningAlgorithm): Promise<{ set: KeySet; added: CurrentKey }> {
  const added = await generateKey(alg);
  return { set: { ...set, current: [...(set?.current ?? []), added], retired: set?.retired ?? [] }, added };
}

/** A fresh key set (no retired keys). */
export async function generateKeySet(algorithms: readonly SigningAlgorithm[]): Promise<KeySet> {
  return { current: await Promise.all(algorithms.map(generateKey)), retired: [] };
}

/** How a rotation goes: `[keys] rotation_grace` and `rotation_signing_delay` (ms), or at once. */
export interface RotationPolicy {
  readonly algorithms: readonly SigningAlgorithm[];
  readonly graceMs: number;
  readonly signingDelayMs: number;
  readonly now: number;
  /** A compromised key: the new keys sign at once, and the old ones are never used again. */
  readonly immediate?: boolean | undefined;
}

/**
 * One new key per algorithm of `before` (or `algorithms` when there is no set yet); the keys they
 * replace stay published, as retired public keys, until `now + graceMs`, and keep their private
 * half for a retry (unless `immediate`); they still sign for `signingDelayMs` (the IdP may not
 * have fetched the new set yet). Retired keys whose time is up are dropped.
 */
export async function rotateKeySet(before: KeySet | undefined, o: RotationPolicy): Promise<{ set: KeySet; rotation: Rotation }> {
  const algs = before ? [...new Set(before.current.map((k) => k.jwk.alg))] : [...o.algorithms];
  const current = await Promise.all(algs.map(generateKey));
  const retiredUntil = o.now + o.graceMs;
  const retiring: RetiredKey[] = (before?.current ?? []).map((k) => ({
    jwk: publicView(k.jwk) as RetiredKey["jwk"],
    until: retiredUntil,
    ...(o.immediate ? {} : { signer: k }),
  }));
  // Only the last rotation's keys may sign again.
  const older = (before?.retired ?? []).filter((r) => r.until > o.now).map((r) => ({ jwk: r.jwk, until: r.until }));
  const delayed = !o.immediate && o.signingDelayMs > 0 && retiring.length > 0;
  return {
    set: { current, retired: [...older, ...retiring], ...(delayed ? { signingDelayUntil: o.now + o.signingDelayMs } : {}) },
    rotation: { kids: current.map((k) => k.jwk.kid), retired: retiring.map((r) => r.jwk.kid), retiredUntil },
  };
}

/**
 * `into` plus, as retired keys published until `until`, the current keys of `from` it does not
 * know: keys a node published on its own (Redis was unreachable) are never dropped without grace.
 * `undefined` when there is nothing to add.
 */
export function adoptUnknownKeys(into: KeySet, from: KeySet, until: number): KeySet | undefined {
  const known = new Set([...into.current.map((k) => k.jwk.kid), ...into.retired.map((r) => r.jwk.kid)]);
  const unknown = from.current.filter((k) => !known.has(k.jwk.kid));
  if (!unknown.length) return undefined;
  return { ...into, retired: [...into.retired, ...unknown.map((k) => ({ jwk: publicView(k.jwk) as RetiredKey["jwk"], until }))] };
}
