/**
 * `upstream_headers_claims` with nested claims, end to end: the real IdP (oidc-provider) puts
 * Keycloak-style `realm_access.roles` into its access tokens, the real gateway copies them
 * into upstream headers by a dotted path.
 */
import { beforeAll, describe, expect, it } from "bun:test";
import { simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { SERVICE_SECRET } from "../support/idp-process.ts";
import { oidcSuite } from "../support/oidc-suite.ts";

let gw: GatewayProcess;
const { idp, upstream, gateways } = oidcSuite({
  idp: { options: { extraClaims: { realm_access: { roles: ["admin", "user"], level: { tier: "gold" } }, "org.id": "top-level-wins" } } },
  neverLogged: () => [SERVICE_SECRET],
});

beforeAll(async () => {
  gw = await startGateway({
    config: simpleConfig(
      `${upstream.url}/anything`,
      `\n[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "${idp.issuer}"\n` +
        `upstream_headers_claims = ["realm_access.roles", "realm_access.level.tier", "org.id", "realm_access.missing", "client_id"]\n` +
        `upstream_headers_names = ["X-Roles", "X-Tier", "X-Org", "X-Missing", "X-Client"]`,
    ),
  });
  gateways.push(gw);
});

describe("upstream_headers_claims with nested claims", () => {
  it("copies a nested claim by its dotted path, a top-level claim of the dotted name first, and no header for a missing one (the caller's own removed)", async () => {
    const res = await fetch(`${gw.proxyUrl}/anything`, {
      headers: { authorization: `Basic ${btoa(`service:${SERVICE_SECRET}`)}`, "x-missing": "forged" },
    });
    expect(res.status).toBe(200);
    const { headers } = (await res.json()) as { headers: Record<string, string> };
    expect(headers["x-roles"]).toBe("admin,user");
    expect(headers["x-tier"]).toBe("gold");
    expect(headers["x-org"]).toBe("top-level-wins");
    expect(headers["x-missing"]).toBeUndefined();
    expect(headers["x-client"]).toBe("service");
  });
});
