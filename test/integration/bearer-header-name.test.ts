/**
 * `bearer_token_header_name`: the caller's access token read from another header than
 * `Authorization` (bare or with its scheme), for `bearer` and `introspection` alike, against the
 * real IdP (oidc-provider) and the real gateway; `Authorization` is then not read, and
 * `hide_credentials` removes the named header from what goes upstream.
 */
import { beforeAll, describe, expect, it } from "bun:test";
import { errorOf } from "../support/config.ts";
import { simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { SERVICE_SECRET } from "../support/idp-process.ts";
import { oidcSuite } from "../support/oidc-suite.ts";

let gw: GatewayProcess;
let kept: GatewayProcess;
let jwt: string;
let opaque: string;
const { idp, upstream, gateways } = oidcSuite({
  neverLogged: () => [SERVICE_SECRET, ...(jwt ? [jwt.slice(-40)] : []), ...(opaque ? [opaque] : [])],
});

const plugin = (extra: string) =>
  `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "${idp.issuer}"\nauth_methods = ["bearer", "introspection"]\nclient_id = "service"\nclient_secret = "${SERVICE_SECRET}"\nbearer_token_header_name = "X-Access-Token"\n${extra}`;

beforeAll(async () => {
  gw = await startGateway({ config: simpleConfig(`${upstream.url}/anything`, plugin("")) });
  gateways.push(gw);
  kept = await startGateway({ config: simpleConfig(`${upstream.url}/anything`, plugin("hide_credentials = false")) });
  gateways.push(kept);
  jwt = (await idp.token("service", SERVICE_SECRET)).access_token;
  opaque = (await idp.token("opaque", "opaque-secret")).access_token;
});

const get = (g: GatewayProcess, headers: Record<string, string>) => fetch(`${g.proxyUrl}/anything`, { headers });
const upstreamHeaders = async (res: Response) => ((await res.json()) as { headers: Record<string, string> }).headers;

describe("bearer_token_header_name", () => {
  it("takes a bare JWT from the named header; the upstream gets it as Bearer, without the caller's header (hide_credentials)", async () => {
    const res = await get(gw, { "x-access-token": jwt });
    expect(res.status).toBe(200);
    const headers = await upstreamHeaders(res);
    expect(headers.authorization).toBe(`Bearer ${jwt}`);
    expect(headers["x-access-token"]).toBeUndefined();
  });

  it("takes the token with its Bearer scheme too", async () => {
    const res = await get(gw, { "x-access-token": `Bearer ${jwt}` });
    expect(res.status).toBe(200);
    await res.text();
  });

  it("takes an opaque token there for introspection", async () => {
    const before = (await idp.stats()).introspection;
    const res = await get(gw, { "x-access-token": opaque });
    expect(res.status).toBe(200);
    await res.text();
    expect((await idp.stats()).introspection).toBe(before + 1);
  });

  it("leaves Authorization alone: a token there is not read (401 with a bare challenge)", async () => {
    const res = await get(gw, { authorization: `Bearer ${jwt}` });
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).not.toContain("error=");
    await res.text();
  });

  it("keeps the named header for the upstream with hide_credentials = false", async () => {
    const res = await get(kept, { "x-access-token": jwt });
    expect(res.status).toBe(200);
    expect((await upstreamHeaders(res))["x-access-token"]).toBe(jwt);
  });

  it("answers a malformed value with 400 invalid_request and a Bearer challenge", async () => {
    const res = await get(gw, { "x-access-token": "Basic c2VydmljZTpzZWNyZXQ=" });
    expect(res.status).toBe(400);
    expect(res.headers.get("www-authenticate")).toStartWith("Bearer ");
    expect(res.headers.get("www-authenticate")).toContain('error="invalid_request"');
    await res.text();
  });

  it("refuses at start a header name while bearer_token_param_type does not read headers, naming the key", async () => {
    const text = simpleConfig(
      "http://127.0.0.1:1/",
      `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "https://idp.example"\nauth_methods = ["bearer"]\nbearer_token_param_type = ["query"]\nbearer_token_header_name = "X-Access-Token"`,
    );
    expect(errorOf(text)).toMatch(/bearer_token_header_name.*"header"/s);
  });
});
