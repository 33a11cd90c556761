/**
 * Whose fault a failed token request is: the caller's (401) or the IdP's (502/503/504).
 * Classification is specified with injected responses; the flow itself runs against the real IdP.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import type { AuthorizationServer } from "oauth4webapi";
import { AuthError, IdpError } from "../../src/errors.ts";
import { createIdpFetch } from "../../src/oidc/client/outbound.ts";
import { requestClientCredentialsToken, type TokenRequestOptions } from "../../src/oidc/client/token-endpoint.ts";
import { bunRuntime } from "../../src/runtime/bun.ts";
import { SERVICE_SECRET, startIdpProcess, type IdpProcess } from "../support/idp-process.ts";

const as: AuthorizationServer = { issuer: "https://idp.example", token_endpoint: "https://idp.example/token" };
const credentials = { clientId: "service", clientSecret: "s3cret-value" };

function answering(response: () => Response | Promise<Response>): TokenRequestOptions {
  return { authMethod: "client_secret_basic", fetch: async () => response(), allowHttp: false, timeout: 1000 };
}
const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

async function failure(options: TokenRequestOptions) {
  const error = await requestClientCredentialsToken(as, credentials, options).catch((e) => e);
  expect(error instanceof AuthError || error instanceof IdpError).toBe(true);
  expect(JSON.stringify({ m: error.message, d: error.detail })).not.toContain(credentials.clientSecret);
  return error as AuthError | IdpError;
}

describe("token endpoint errors", () => {
  it.each([
    ["400 invalid_client", () => json(400, { error: "invalid_client" })],
    ["401 with an OAuth body", () => json(401, { error: "invalid_client", error_description: "client authentication failed" })],
    ["401 with a challenge and no body", () => new Response(null, { status: 401, headers: { "www-authenticate": 'Basic realm="idp"' } })],
    ["401 without a body", () => new Response("nope", { status: 401 })],
    ["403 HTML", () => new Response("<h1>Forbidden</h1>", { status: 403, headers: { "content-type": "text/html" } })],
    ["400 unauthorized_client", () => json(400, { error: "unauthorized_client" })],
  ])("call a refusal (%s) the caller's fault: 401", async (_what, response) => {
    const error = await failure(answering(response));
    expect(error).toBeInstanceOf(AuthError);
    expect(error.status).toBe(401);
    expect((error as AuthError).error).toBe("invalid_client");
  });

  it.each([
    ["500", () => new Response("boom", { status: 500 }), 502],
    ["503 with an OAuth body", () => json(503, { error: "temporarily_unavailable" }), 502],
    ["200 that is not JSON", () => new Response("<html>", { status: 200, headers: { "content-type": "text/html" } }), 502],
    ["200 without access_token", () => json(200, { token_type: "Bearer" }), 502],
    ["200 with an unknown token_type", () => json(200, { access_token: "x", token_type: "mac" }), 502],
    ["302 redirect", () => new Response(null, { status: 302, headers: { location: "https://elsewhere" } }), 502],
  ])("call a bad answer (%s) the IdP's fault", async (_what, response, status) => {
    const error = await failure(answering(response));
    expect(error).toBeInstanceOf(IdpError);
    expect(error.status).toBe(status);
  });

  it("calls a token endpoint that cannot be reached 503, and one that hangs 504", async () => {
    const unreachable = await failure({
      ...answering(() => json(200, {})),
      fetch: createIdpFetch({ runtime: bunRuntime, trustedCertificates: [] }, { timeout: 1000, sslVerify: true }),
    });
    expect(unreachable).toBeInstanceOf(IdpError);
    expect(unreachable.status).toBe(503);
  });

  it("sends scope and audience only when configured, and client_secret_post when asked", async () => {
    const seen: { headers: Record<string, string>; body: string }[] = [];
    const fetch = async (_url: string | URL | Request, init?: RequestInit) => {
      seen.push({ headers: Object.fromEntries(new Headers(init?.headers).entries()), body: String(init?.body) });
      return json(200, { access_token: "opaque", token_type: "Bearer", expires_in: 60 });
    };
    const base = { fetch, allowHttp: false, timeout: 1000 };
    await requestClientCredentialsToken(as, credentials, { ...base, authMethod: "client_secret_basic" });
    await requestClientCredentialsToken(as, credentials, {
      ...base,
      authMethod: "client_secret_post",
      scopes: ["api", "read"],
      audience: ["a1", "a2"],
    });
    const first = new URLSearchParams(seen[0]!.body);
    expect(first.get("grant_type")).toBe("client_credentials");
    expect(first.has("scope")).toBe(false);
    expect(seen[0]!.headers.authorization).toBe(`Basic ${btoa("service:s3cret-value")}`); // form-encoding leaves `-` alone
    const second = new URLSearchParams(seen[1]!.body);
    expect(second.get("scope")).toBe("api read");
    expect(second.getAll("audience")).toEqual(["a1", "a2"]);
    expect(second.get("client_secret")).toBe("s3cret-value");
    expect(seen[1]!.headers.authorization).toBeUndefined();
  });

  it("form-encodes id and secret in the Basic header (RFC 6749 Appendix B)", async () => {
    let header = "";
    await requestClientCredentialsToken(
      as,
      { clientId: "my client", clientSecret: "p+w:d" },
      {
        authMethod: "client_secret_basic",
        allowHttp: false,
        timeout: 1000,
        fetch: async (_u, init) => {
          header = new Headers(init?.headers).get("authorization") ?? "";
          return json(200, { access_token: "x", token_type: "bearer" });
        },
      },
    );
    expect(atob(header.slice(6))).toBe("my+client:p%2Bw%3Ad");
  });
});

describe("token endpoint against the real IdP", () => {
  let idp: IdpProcess;
  let meta: AuthorizationServer;
  let options: TokenRequestOptions;
  beforeAll(async () => {
    idp = await startIdpProcess();
    meta = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as AuthorizationServer;
    options = {
      authMethod: "client_secret_basic",
      allowHttp: true,
      timeout: 5000,
      fetch: createIdpFetch({ runtime: bunRuntime, trustedCertificates: [] }, { timeout: 5000, sslVerify: true }),
    };
  });
  afterAll(() => idp?.stop());

  it("gets a token for the service client", async () => {
    const response = await requestClientCredentialsToken(meta, { clientId: "service", clientSecret: SERVICE_SECRET }, options);
    expect(response.token_type).toBe("bearer");
    expect(response.expires_in).toBe(300);
    expect(response.access_token.split(".")).toHaveLength(3);
  });

  it("calls a wrong secret and an unknown client refusals", async () => {
    for (const creds of [
      { clientId: "service", clientSecret: "wrong" },
      { clientId: "nobody", clientSecret: "x" },
    ]) {
      const error = await requestClientCredentialsToken(meta, creds, options).catch((e) => e);
      expect(error).toBeInstanceOf(AuthError);
      expect(error.status).toBe(401);
    }
  });

  it("calls an IdP that drops the connection 503, a 500 502, and a slow one 504", async () => {
    const creds = { clientId: "service", clientSecret: SERVICE_SECRET };
    await idp.fail(0, { count: 1 });
    expect((await requestClientCredentialsToken(meta, creds, options).catch((e) => e)).status).toBe(503);
    await idp.fail(500, { count: 1 });
    expect((await requestClientCredentialsToken(meta, creds, options).catch((e) => e)).status).toBe(502);
    // A short timeout of its own, so the refusals above may be slow on a busy machine.
    const short = {
      ...options,
      timeout: 500,
      fetch: createIdpFetch({ runtime: bunRuntime, trustedCertificates: [] }, { timeout: 500, sslVerify: true }),
    };
    await idp.delay(3000, { count: 1 });
    const started = performance.now();
    expect((await requestClientCredentialsToken(meta, creds, short).catch((e) => e)).status).toBe(504);
    expect(performance.now() - started).toBeLessThan(2500);
  });
});
