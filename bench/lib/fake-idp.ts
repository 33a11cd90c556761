/**
 * A minimal, fast OpenID provider for filling the token cache with 100 000 tokens in seconds:
 * discovery, JWKS and a token endpoint that issues an ES256 JWT to any client_id it is sent
 * (client_secret_basic). The development IdP (oidc-provider) is the real thing; this one exists
 * because registering and serving 100 000 clients there would take most of the time budget.
 * Tokens are shaped like Keycloak's (about 900 bytes), so the cache holds realistic strings.
 */
import { exportJWK, generateKeyPair, SignJWT } from "jose";

/** The claims Keycloak puts in a client credentials token (besides iss, sub, aud, jti, iat, exp): the bench's token size. */
export function keycloakServiceClaims(clientId: string): Record<string, unknown> {
  return {
    typ: "Bearer",
    azp: clientId,
    client_id: clientId,
    scope: "profile email",
    preferred_username: `service-account-${clientId}`,
    email_verified: false,
    realm_access: { roles: ["default-roles-master", "offline_access", "uma_authorization"] },
    resource_access: { account: { roles: ["manage-account", "manage-account-links", "view-profile"] } },
    acr: "1",
    allowed_origins: ["/*"],
    sid: crypto.randomUUID(),
    clientHost: "127.0.0.1",
    clientAddress: "127.0.0.1",
  };
}

export interface FakeIdp {
  readonly issuer: string;
  readonly tokenCalls: () => number;
  /** Bytes of all access tokens issued (the "tokens' own bytes" of the memory budget). */
  readonly tokenBytes: () => number;
  stop(): Promise<void>;
}

export async function startFakeIdp(): Promise<FakeIdp> {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const jwk = { ...(await exportJWK(publicKey)), kid: "bench", alg: "ES256", use: "sig" };
  let calls = 0;
  let bytes = 0;
  let issuer = "";
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/realms/bench/.well-known/openid-configuration") {
        return Response.json({
          issuer,
          token_endpoint: `${issuer}/protocol/openid-connect/token`,
          jwks_uri: `${issuer}/protocol/openid-connect/certs`,
          grant_types_supported: ["client_credentials"],
          token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
          id_token_signing_alg_values_supported: ["ES256"],
          response_types_supported: ["code"],
          subject_types_supported: ["public"],
        });
      }
      if (path === "/realms/bench/protocol/openid-connect/certs") return Response.json({ keys: [jwk] });
      if (path === "/realms/bench/protocol/openid-connect/token" && req.method === "POST") {
        calls++;
        const auth = req.headers.get("authorization") ?? "";
        const clientId = decodeURIComponent(atob(auth.slice(6)).split(":")[0] ?? "");
        if (!clientId) return Response.json({ error: "invalid_client" }, { status: 401 });
        await req.arrayBuffer();
        const accessToken = await new SignJWT(keycloakServiceClaims(clientId))
          .setProtectedHeader({ alg: "ES256", kid: "bench", typ: "JWT" })
          .setIssuer(issuer)
          .setSubject(crypto.randomUUID())
          .setAudience("account")
          .setJti(crypto.randomUUID())
          .setIssuedAt()
          .setExpirationTime("1h")
          .sign(privateKey);
        bytes += accessToken.length;
        return Response.json({ access_token: accessToken, token_type: "Bearer", expires_in: 3600, scope: "profile email" });
      }
      return new Response("not found", { status: 404 });
    },
  });
  issuer = `http://127.0.0.1:${server.port}/realms/bench`;
  return { issuer, tokenCalls: () => calls, tokenBytes: () => bytes, stop: () => server.stop(true) };
}
