/**
 * `client_secret_jwt` (RFC 7523 §2.2, OIDC Core §9): a client assertion MACed with the client
 * secret. oauth4webapi's `ClientSecretJwt` only does HS256; Kong also allows HS384 and HS512,
 * so the assertion is built here with jose, with the same claims as our `private_key_jwt`:
 * `iss` = `sub` = `client_id`, `aud`, a fresh `jti`, `iat` and `exp` 60 s later.
 */
import { SignJWT } from "jose";
import type * as oauth from "oauth4webapi";

/** HMAC JWS algorithms (RFC 7518 §3.2): `client_secret_jwt` only. */
export const HMAC_ALGORITHMS = ["HS256", "HS384", "HS512"] as const;
export type HmacAlgorithm = (typeof HMAC_ALGORITHMS)[number];

export const isHmacAlgorithm = (value: unknown): value is HmacAlgorithm =>
  typeof value === "string" && (HMAC_ALGORITHMS as readonly string[]).includes(value);

const ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const LIFETIME_S = 60;

/** The `oauth.ClientAuth` of `client_secret_jwt`; `audience` undefined: the issuer identifier. */
export function clientSecretJwt(clientSecret: string, alg: HmacAlgorithm, audience?: string): oauth.ClientAuth {
  const key = new TextEncoder().encode(clientSecret);
  return async (as, client, body) => {
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg, typ: "JWT" })
      .setIssuer(client.client_id)
      .setSubject(client.client_id)
      .setAudience(audience ?? as.issuer)
      .setJti(crypto.randomUUID())
      .setIssuedAt(now)
      .setExpirationTime(now + LIFETIME_S)
      .sign(key);
    body.set("client_id", client.client_id);
    body.set("client_assertion_type", ASSERTION_TYPE);
    body.set("client_assertion", assertion);
  };
}
