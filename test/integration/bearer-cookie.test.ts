/**
 * Kong's `bearer_token_param_type = ["cookie"]` with `bearer_token_cookie_name`, end to end:
 * a JWT access token of the real IdP (oidc-provider) in a cookie, verified by the real gateway.
 */
import { beforeAll, describe, expect, it } from "bun:test";
import { errorOf } from "../support/config.ts";
import { simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { SERVICE_SECRET } from "../support/idp-process.ts";
import { oidcSuite } from "../support/oidc-suite.ts";

let gw: GatewayProcess;
let token: string | undefined;
const { idp, upstream, gateways } = oidcSuite({ neverLogged: () => (token ? [token.slice(-40)] : []) });

beforeAll(async () => {
  gw = await startGateway({
    config: simpleConfig(
      `${upstream.url}/anything`,
      `\n[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "${idp.issuer}"\nauth_methods = ["bearer"]\nbearer_token_param_type = ["header", "cookie"]\nbearer_token_cookie_name = "at"`,
    ),
  });
  gateways.push(gw);
  token = (await idp.token("service", SERVICE_SECRET)).access_token;
});

const get = (headers: Record<string, string>) => fetch(`${gw.proxyUrl}/anything`, { headers });

describe("bearer_token_cookie_name", () => {
  it("accepts the access token from the named cookie, and hides that cookie from the upstream (the others pass)", async () => {
    const res = await get({ cookie: `theme=dark; at=${token}; lang=en` });
    expect(res.status).toBe(200);
    const { headers } = (await res.json()) as { headers: Record<string, string> };
    expect(headers.authorization).toBe(`Bearer ${token}`);
    expect(headers.cookie).toBe("theme=dark; lang=en");
  });

  it("answers a token in the cookie and in the header at once with 400 invalid_request", async () => {
    const res = await get({ cookie: `at=${token}`, authorization: `Bearer ${token}` });
    expect(res.status).toBe(400);
    expect(res.headers.get("www-authenticate")).toContain('error="invalid_request"');
    await res.text();
  });

  it("refuses a cookie that is not a valid token with 401 invalid_token, and asks for one without it", async () => {
    const bad = await get({ cookie: "at=not.a.jwt" });
    expect(bad.status).toBe(401);
    expect(bad.headers.get("www-authenticate")).toContain('error="invalid_token"');
    const none = await get({ cookie: "other=1" });
    expect(none.status).toBe(401);
    // A bare challenge (RFC 6750 §3.1): no token was sent, so no error is named.
    expect(none.headers.get("www-authenticate")).toStartWith("Bearer");
    expect(none.headers.get("www-authenticate")).not.toContain("error=");
    await Promise.all([bad.text(), none.text()]);
  });

  it("refuses at start the cookie type without a cookie name, naming the key", async () => {
    const text = simpleConfig(
      "http://127.0.0.1:1/",
      `\n[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "https://idp.example"\nauth_methods = ["bearer"]\nbearer_token_param_type = ["cookie"]`,
    );
    expect(errorOf(text)).toMatch(/bearer_token_cookie_name.*needs 'bearer_token_cookie_name'/s);
  });
});
