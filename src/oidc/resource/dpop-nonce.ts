/**
 * Stateless DPoP server nonces (RFC 9449 §9). A nonce is an HMAC of the current time slot under
 * a secret: nothing is stored, and every gateway holding the same secret issues and accepts the
 * same nonces, so a client may be sent to any of them. The nonce of the current and of the
 * previous slot are accepted (a nonce lives between one and two slots), and the next slot's
 * too near a slot edge, so gateways whose clocks differ by up to `skew` agree.
 *
 * The HMAC is computed once per slot and cached: checking a nonce is two string comparisons.
 */
import { base64url } from "../../lib/base64url.ts";

export interface DpopNonces {
  /** The nonce to hand out now (`DPoP-Nonce`). */
  current(now?: number): Promise<string>;
  /** True when `nonce` was issued by this secret in an accepted slot. */
  verify(nonce: string, now?: number): Promise<boolean>;
}

export interface DpopNonceOptions {
  /** Shared secret, at least 32 bytes of entropy (e.g. `openssl rand -base64 32`). */
  readonly secret: string | Uint8Array;
  /** Slot length in seconds (default 60): a nonce is accepted for 60 to 120 s. */
  readonly slotSeconds?: number;
  /** Clock difference tolerated between gateways, in seconds (default 5). */
  readonly skewSeconds?: number;
}

const encoder = new TextEncoder();

/** Constant-time string comparison for values of public length (nonces, thumbprints). */
export function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

export async function createDpopNonces(options: DpopNonceOptions): Promise<DpopNonces> {
  const secret = typeof options.secret === "string" ? encoder.encode(options.secret) : options.secret;
  if (secret.byteLength < 32) throw new RangeError("the dpop nonce 'secret' must be at least 32 bytes");
  const slotMs = (options.slotSeconds ?? 60) * 1000;
  const skewMs = (options.skewSeconds ?? 5) * 1000;
  if (!(slotMs >= 1000)) throw new RangeError("'slotSeconds' must be at least 1");
  if (!(skewMs >= 0 && skewMs < slotMs)) throw new RangeError("'skewSeconds' must be at least 0 and shorter than a slot");
  const key = await crypto.subtle.importKey("raw", secret as Uint8Array<ArrayBuffer>, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);

  // A handful of slots at most are ever live; the cache is pruned to those.
  const cache = new Map<number, Promise<string>>();
  const nonceOf = (slot: number): Promise<string> => {
    let value = cache.get(slot);
    if (!value) {
      value = crypto.subtle.sign("HMAC", key, encoder.encode(`oidc-gateway dpop-nonce v1 ${slot}`)).then((mac) => base64url(new Uint8Array(mac)));
      cache.set(slot, value);
      if (cache.size > 8) for (const old of cache.keys()) if (old < slot - 2) cache.delete(old);
    }
    return value;
  };
  const slotAt = (now: number) => Math.floor(now / slotMs);

  return {
    current: (now = Date.now()) => nonceOf(slotAt(now)),
    async verify(nonce, now = Date.now()) {
      const slot = slotAt(now);
      const slots = [slot, slot - 1];
      if (slotAt(now + skewMs) !== slot) slots.push(slot + 1);
      let ok = false;
      // Every candidate is compared, so timing does not tell which slot matched.
      for (const s of slots) ok = timingSafeEqual(nonce, await nonceOf(s)) || ok;
      return ok;
    },
  };
}
