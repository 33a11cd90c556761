import { afterAll, describe, expect, it } from "bun:test";
import { createLogger } from "../../../../src/log.ts";
import { IssuerRegistry } from "../../../../src/oidc/client/issuer.ts";
import { bunRuntime } from "../../../../src/runtime/bun.ts";

const seen: { path: string; tenant: string | null }[] = [];
const server: ReturnType<typeof Bun.serve> = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(req): Response {
    const url = new URL(req.url);
    seen.push({ path: url.pathname, tenant: req.headers.get("x-tenant") });
    const origin: string = `http://127.0.0.1:${server.port}`;
    if (url.pathname === "/.well-known/openid-configuration")
      return Response.json({ issuer: origin, jwks_uri: `${origin}/jwks`, token_endpoint: `${origin}/token` });
    return Response.json({ keys: [] });
  },
});
afterAll(() => server.stop(true));

describe("discovery_headers_names/_values", () => {
  it("are sent with the discovery request, and not to other endpoints", async () => {
    const registry = new IssuerRegistry({ runtime: bunRuntime, trustedCertificates: [], log: createLogger("error", () => {}) });
    const issuer = await registry.acquire({
      issuer: `http://127.0.0.1:${server.port}`,
      timeout: 2000,
      sslVerify: true,
      rediscoveryLifetime: 30,
      discoveryHeaders: { "x-tenant": "blue" },
    });
    await issuer.metadata();
    expect(seen.find((s) => s.path === "/.well-known/openid-configuration")?.tenant).toBe("blue");
    expect(seen.find((s) => s.path === "/jwks")?.tenant).toBeNull();
    registry.release(issuer);
  });
});
