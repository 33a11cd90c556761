/**
 * A minimal DPoP client (RFC 9449): gets a DPoP-bound access token from an IdP with the client
 * credentials grant, then calls a URL through the gateway with a fresh proof. jose only.
 *
 *   bun examples/dpop-client/client.ts --issuer http://localhost:8080/realms/master \
 *     --client-id client-dpop-auth --client-secret client-dpop-auth-secret \
 *     --url http://localhost:8000/anything
 *
 * Also runs under Deno: `deno run -A examples/dpop-client/client.ts ...`.
 * Options: --token-endpoint (instead of discovery via --issuer), --method (GET), --data (a body),
 * --scope, --alg (ES256), --calls (1; each call gets its own proof).
 * The key pair lives only in memory: every run is a new DPoP key.
 */
import { calculateJwkThumbprint, decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";

function args(): Record<string, string> {
  const argv = typeof Deno !== "undefined" ? Deno.args : process.argv.slice(2);
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]!;
    if (!name.startsWith("--")) throw new Error(`unexpected argument "${name}"`);
    out[name.slice(2)] = argv[++i] ?? "";
  }
  return out;
}
declare const Deno: { args: string[] } | undefined;

interface DpopKey {
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
  readonly alg: string;
}

const b64url = (bytes: ArrayBuffer) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** A proof for one request (RFC 9449 §4.2): htu without query and fragment, ath when a token is sent. */
async function proof(key: DpopKey, method: string, url: string, extra: { accessToken?: string; nonce?: string } = {}): Promise<string> {
  const u = new URL(url);
  const claims: Record<string, unknown> = { htm: method, htu: `${u.origin}${u.pathname}`, jti: crypto.randomUUID() };
  if (extra.accessToken) claims.ath = b64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(extra.accessToken)));
  if (extra.nonce) claims.nonce = extra.nonce;
  return new SignJWT(claims).setProtectedHeader({ typ: "dpop+jwt", alg: key.alg, jwk: key.jwk }).setIssuedAt().sign(key.privateKey);
}

/** Sends a request with a proof; when told `use_dpop_nonce`, retries once with the nonce given. */
async function withProof(key: DpopKey, method: string, url: string, init: RequestInit, accessToken?: string): Promise<Response> {
  let nonce: string | undefined;
  for (let attempt = 0; ; attempt++) {
    const headers = new Headers(init.headers);
    headers.set("dpop", await proof(key, method, url, { ...(accessToken ? { accessToken } : {}), ...(nonce ? { nonce } : {}) }));
    const response = await fetch(url, { ...init, method, headers });
    const given = response.headers.get("dpop-nonce");
    const wantsNonce = given && (response.status === 400 || response.status === 401) && (await response.clone().text()).concat(response.headers.get("www-authenticate") ?? "").includes("use_dpop_nonce");
    if (!wantsNonce || attempt > 0) return response;
    nonce = given;
  }
}

async function main(): Promise<number> {
  const a = args();
  const clientId = a["client-id"] ?? "client-dpop-auth";
  const clientSecret = a["client-secret"] ?? "client-dpop-auth-secret";
  const target = a.url;
  if (!target || (!a.issuer && !a["token-endpoint"])) {
    console.error("usage: client.ts (--issuer URL | --token-endpoint URL) --url URL [--client-id ID --client-secret SECRET --method GET --data BODY --scope S --alg ES256 --calls N]");
    return 2;
  }
  let tokenEndpoint = a["token-endpoint"];
  if (!tokenEndpoint) {
    const discovery = await fetch(`${a.issuer!.replace(/\/$/, "")}/.well-known/openid-configuration`);
    if (!discovery.ok) throw new Error(`discovery failed: ${discovery.status}`);
    tokenEndpoint = ((await discovery.json()) as { token_endpoint: string }).token_endpoint;
  }

  const alg = a.alg ?? "ES256";
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const key: DpopKey = { privateKey, jwk: await exportJWK(publicKey), alg };
  console.error(`dpop key thumbprint (cnf.jkt): ${await calculateJwkThumbprint(key.jwk)}`);

  // 1. Token request (RFC 9449 §5): client_secret_basic + a proof for POST <token endpoint>.
  const form = new URLSearchParams({ grant_type: "client_credentials", ...(a.scope ? { scope: a.scope } : {}) });
  const basic = btoa(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`);
  const tokenResponse = await withProof(key, "POST", tokenEndpoint, {
    headers: { authorization: `Basic ${basic}`, "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: form.toString(),
  });
  const token = (await tokenResponse.json()) as { access_token?: string; token_type?: string; error?: string; error_description?: string };
  if (!tokenResponse.ok || !token.access_token) {
    console.error(`token request failed: ${tokenResponse.status} ${token.error ?? ""} ${token.error_description ?? ""}`);
    return 1;
  }
  if (token.token_type?.toLowerCase() !== "dpop") console.error(`warning: token_type is "${token.token_type}", not "DPoP": the IdP did not bind the token`);
  try {
    const cnf = decodeJwt(token.access_token).cnf as { jkt?: string } | undefined;
    console.error(`access token cnf.jkt: ${cnf?.jkt ?? "(none)"}`);
  } catch {
    console.error("access token is opaque");
  }

  // 2. Resource request(s) (RFC 9449 §7): Authorization: DPoP <token> + a fresh proof with ath.
  const method = (a.method ?? "GET").toUpperCase();
  const calls = Number(a.calls ?? "1");
  let status = 0;
  for (let i = 0; i < calls; i++) {
    const response = await withProof(key, method, target, { headers: { authorization: `DPoP ${token.access_token}` }, ...(a.data !== undefined ? { body: a.data } : {}) }, token.access_token);
    status = response.status;
    console.error(`${method} ${target} -> ${response.status}${response.headers.get("www-authenticate") ? ` (${response.headers.get("www-authenticate")})` : ""}`);
    console.log(await response.text());
  }
  return status >= 200 && status < 300 ? 0 : 1;
}

main().then(
  (code) => {
    if (typeof process !== "undefined") process.exitCode = code;
  },
  (error) => {
    console.error(`dpop-client: ${(error as Error).message}`);
    if (typeof process !== "undefined") process.exitCode = 1;
  },
);
