/**
 * Load for scenario 6: a DPoP-bound access token from the development IdP, and proofs made before
 * each round (one per request: htm, htu of the gateway URL, a fresh jti, ath of the token).
 */
import { writeFileSync } from "node:fs";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";

export interface DpopClient {
  readonly accessToken: string;
  /** Writes `count` proofs for `GET url`, one per line; resolves with the file. */
  writeProofs(file: string, url: string, count: number): Promise<string>;
}

const b64u = (bytes: ArrayBuffer) => Buffer.from(bytes).toString("base64url");

async function proof(privateKey: CryptoKey, jwk: JWK, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT({ ...claims, jti: crypto.randomUUID() })
    .setProtectedHeader({ typ: "dpop+jwt", alg: "ES256", jwk })
    .setIssuedAt()
    .sign(privateKey);
}

export async function dpopClient(tokenEndpoint: string, clientId: string, secret: string): Promise<DpopClient> {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(publicKey);
  await calculateJwkThumbprint(jwk);
  const res = await fetch(tokenEndpoint, {
    method: "POST",
    headers: {
      authorization: `Basic ${btoa(`${clientId}:${secret}`)}`,
      "content-type": "application/x-www-form-urlencoded",
      dpop: await proof(privateKey, jwk, { htm: "POST", htu: tokenEndpoint }),
    },
    body: "grant_type=client_credentials",
  });
  if (!res.ok) throw new Error(`DPoP token request: ${res.status} ${await res.text()}`);
  const { access_token: accessToken } = (await res.json()) as { access_token: string };
  const ath = b64u(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(accessToken)));
  return {
    accessToken,
    async writeProofs(file, url, count) {
      const u = new URL(url);
      const claims = { htm: "GET", htu: `${u.origin}${u.pathname}`, ath };
      const lines: string[] = [];
      for (let i = 0; i < count; i++) lines.push(await proof(privateKey, jwk, claims));
      writeFileSync(file, lines.join("\n") + "\n");
      return file;
    },
  };
}
