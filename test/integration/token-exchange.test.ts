/**
 * Token exchange (RFC 8693) against the real IdP: the caller's bearer token is verified, then
 * exchanged with the gateway's own client for a token meant for the upstream, and cached; the
 * exchange request carries `token_headers_*` and `token_post_args_*` as the other token requests do.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { SERVICE_SECRET, startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

const EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
const EXCHANGER = { id: "gateway-exchanger", secret: "exchanger-secret-0123456789" };
let idp: IdpProcess;
let upstream: EchoUpstream;
let gw: GatewayProcess;
const payload = (jwt: string) => JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString());

beforeAll(async () => {
  idp = await startIdpProcess({
    options: { extraClients: [{ client_id: EXCHANGER.id, client_secret: EXCHANGER.secret, grant_types: [EXCHANGE_GRANT, "client_credentials"] }] },
  });
  upstream = startEchoUpstream();
  gw = await startGateway({
    config: simpleConfig(
      `${upstream.url}/anything`,
      `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "${idp.issuer}"\nauth_methods = ["bearer"]\nclient_id = "${EXCHANGER.id}"\nclient_secret = "${EXCHANGER.secret}"\ntoken_exchange_resource = "https://orders.example"\n`,
    ),
  });
});
afterAll(async () => {
  await gw?.stop();
  await idp?.stop();
  await upstream?.stop();
});

const call = (token: string) => fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: `Bearer ${token}` } });

describe("token exchange", () => {
  it("gives the upstream a token for its own audience, obtained with the gateway's client, never the caller's", async () => {
    const { access_token } = await idp.token("service", SERVICE_SECRET);
    const before = (await idp.stats()).token.byGrant[EXCHANGE_GRANT] ?? 0;
    const r = await call(access_token);
    expect(r.status).toBe(200);
    const forwarded = ((await r.json()) as { headers: Record<string, string> }).headers.authorization!.slice(7);
    expect(forwarded).not.toBe(access_token);
    const claims = payload(forwarded);
    expect(claims.aud).toBe("https://orders.example");
    expect(claims.client_id).toBe(EXCHANGER.id);
    expect((await idp.stats()).token.byGrant[EXCHANGE_GRANT]).toBe(before + 1);
  });

  it("caches the exchanged token per caller token: the repeat makes no IdP call", async () => {
    const { access_token } = await idp.token("service", SERVICE_SECRET);
    expect((await call(access_token)).status).toBe(200);
    const after = (await idp.stats()).token.byGrant[EXCHANGE_GRANT] ?? 0;
    expect((await call(access_token)).status).toBe(200);
    expect((await idp.stats()).token.byGrant[EXCHANGE_GRANT]).toBe(after);
  });

  it("refuses a token that fails verification before any exchange", async () => {
    const before = (await idp.stats()).token.byGrant[EXCHANGE_GRANT] ?? 0;
    expect((await call("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.")).status).toBe(401);
    expect((await idp.stats()).token.byGrant[EXCHANGE_GRANT] ?? 0).toBe(before);
  });

  it("answers 5xx, never 401, when the IdP fails the exchange", async () => {
    const { access_token } = await idp.token("service", SERVICE_SECRET);
    await idp.fail(500, { count: 5, targets: ["token"] });
    const r = await call(access_token);
    await idp.normal();
    expect(r.status).toBeGreaterThanOrEqual(500);
  });
});

describe("token_headers_* and token_post_args_* on the exchange request", () => {
  let withArgs: GatewayProcess;
  beforeAll(async () => {
    withArgs = await startGateway({
      config: simpleConfig(
        `${upstream.url}/anything`,
        [
          `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "${idp.issuer}"\nauth_methods = ["bearer"]`,
          `client_id = "${EXCHANGER.id}"\nclient_secret = "${EXCHANGER.secret}"\ntoken_exchange_resource = "https://orders.example"`,
          `token_headers_names = ["X-Tenant"]\ntoken_headers_values = ["acme"]`,
          `token_post_args_names = ["tenant_hint", "resource", "subject_token"]\ntoken_post_args_values = ["acme", "https://elsewhere.example", "not-the-token"]`,
        ].join("\n"),
      ),
    });
  });
  afterAll(async () => {
    await withArgs?.stop();
  });

  it("sends them, the exchange's own resource and subject token winning", async () => {
    const { access_token } = await idp.token("service", SERVICE_SECRET);
    const r = await fetch(`${withArgs.proxyUrl}/anything`, { headers: { authorization: `Bearer ${access_token}` } });
    expect(r.status).toBe(200);
    const forwarded = ((await r.json()) as { headers: Record<string, string> }).headers.authorization!.slice(7);
    expect(payload(forwarded).aud).toBe("https://orders.example");
    const last = (await idp.stats()).lastToken!;
    expect(last.params.grant_type).toBe(EXCHANGE_GRANT);
    expect(last.headers["x-tenant"]).toBe("acme");
    expect(last.params.tenant_hint).toBe("acme");
    expect(last.params.resource).toBe("https://orders.example");
    expect(last.params.subject_token).toBe(access_token);
  });
});
