/**
 * The bearer scenarios' issuer: one RSA key made for the run (openssl), served as discovery + JWKS
 * for the gateway, and as a PEM public key (HAProxy `jwt_verify`) and an X.509 certificate
 * (mod_auth_openidc `OIDCOAuthVerifyCertFiles`) for the peers, so all three verify the very same
 * RS256 tokens, with `iss`, `aud` and `exp` checked.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportJWK, importPKCS8, importSPKI, SignJWT } from "jose";
import { run } from "./proc.ts";

export const AUDIENCE = "bench-api";
export const KID = "bench-rs256";

export interface StaticIssuer {
  readonly issuer: string;
  /** PEM public key (SubjectPublicKeyInfo). */
  readonly publicKeyFile: string;
  /** Self-signed X.509 certificate of the same key. */
  readonly certFile: string;
  /** `count` distinct valid tokens (distinct `sub` and `jti`), valid for `ttlSeconds`. */
  tokens(count: number, ttlSeconds?: number): Promise<string[]>;
  /** A token whose signature does not verify (the last signature byte changed). */
  forged(): Promise<string>;
  /** One file per line with `count` tokens, for bench/lua/tokens.lua. */
  tokensFile(count: number): Promise<string>;
  stop(): Promise<void>;
}

export async function startStaticIssuer(dir: string): Promise<StaticIssuer> {
  const keys = join(dir, "static-issuer");
  mkdirSync(keys, { recursive: true, mode: 0o755 });
  const keyFile = join(keys, "key.pem");
  const certFile = join(keys, "cert.pem");
  const publicKeyFile = join(keys, "public.pem");
  const made = await run(
    [
      "openssl",
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-subj",
      "/CN=oidc-gateway bench issuer",
      "-days",
      "2",
    ],
    60_000,
  );
  if (made.code !== 0) throw new Error(`openssl req failed: ${made.stderr}`);
  const pub = await run(["openssl", "x509", "-pubkey", "-noout", "-in", certFile]);
  if (pub.code !== 0) throw new Error(`openssl x509 -pubkey failed: ${pub.stderr}`);
  writeFileSync(publicKeyFile, pub.stdout, { mode: 0o644 });
  const privateKey = await importPKCS8(readFileSync(keyFile, "utf8"), "RS256");
  const jwk = { ...(await exportJWK(await importSPKI(pub.stdout, "RS256"))), kid: KID, alg: "RS256", use: "sig" };

  let issuer = "";
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/.well-known/openid-configuration") {
        return Response.json({
          issuer,
          jwks_uri: `${issuer}/jwks`,
          token_endpoint: `${issuer}/token`,
          response_types_supported: ["code"],
          subject_types_supported: ["public"],
          id_token_signing_alg_values_supported: ["RS256"],
        });
      }
      if (path === "/jwks") return Response.json({ keys: [jwk] });
      return new Response("not found", { status: 404 });
    },
  });
  issuer = `http://127.0.0.1:${server.port}`;

  const sign = (i: number, ttlSeconds: number) =>
    new SignJWT({ scope: "profile email", client_id: "bench", azp: "bench" })
      .setProtectedHeader({ alg: "RS256", kid: KID, typ: "JWT" })
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setSubject(`bench-user-${i}`)
      .setJti(crypto.randomUUID())
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
      .sign(privateKey);
  const tokens = (count: number, ttlSeconds = 3 * 3600) => Promise.all(Array.from({ length: count }, (_, i) => sign(i, ttlSeconds)));
  return {
    issuer,
    publicKeyFile,
    certFile,
    tokens,
    async forged() {
      const [t] = await tokens(1);
      const last = t!.at(-2) === "A" ? "B" : "A"; // the second-to-last character: all 6 bits of it are signature bits
      return `${t!.slice(0, -2)}${last}${t!.at(-1)}`;
    },
    async tokensFile(count) {
      const file = join(keys, `tokens-${count}.txt`);
      writeFileSync(file, (await tokens(count)).join("\n") + "\n");
      return file;
    },
    stop: () => server.stop(true),
  };
}
