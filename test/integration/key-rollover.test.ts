/**
 * Key rollover the IdP has not seen yet: after `DELETE /openid-connect/jwks` the gateway publishes
 * the new keys at once but keeps signing private_key_jwt assertions with the previous key until
 * its JWKS was fetched after the rotation or `[keys] rotation_signing_delay` passed; an
 * `invalid_client` right after a rotation is retried once with the previous key. The dev IdP as
 * it is (oidc-provider keeps a client's downloaded JWKS for a while): no request fails.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

const ROUTES = ["first", "after-rotation", "after-delay", "after-fetch"];
let idp: IdpProcess;
let upstream: EchoUpstream;
let gw: GatewayProcess;

beforeAll(async () => {
  upstream = startEchoUpstream();
  idp = await startIdpProcess();
  // One upstream-oauth instance per route: each gets its own token, i.e. makes its own signed token request.
  const routes = ROUTES.map(
    (r) =>
      `[[routes]]\nname = "${r}"\nservice = "echo"\npaths = ["/${r}"]\n\n[[plugins]]\nname = "upstream-oauth"\nroute = "${r}"\n[plugins.config.oauth]\nissuer = "${idp.issuer}"\nclient_id = "rollover"\n[plugins.config.client]\nauth_method = "private_key_jwt"\nclient_alg = "ES256"\n`,
  );
  const config =
    simpleConfig(`${upstream.url}/anything`).replace(/\[\[routes\]\][\s\S]*$/, routes.join("\n")) +
    `\n[keys]\njwks_file = "{{dir}}/gateway-jwks.json"\nrotation_signing_delay = 2\n`;
  gw = await startGateway({ config });
  await idp.addClient({
    client_id: "rollover",
    token_endpoint_auth_method: "private_key_jwt",
    jwks_uri: `${gw.adminUrl}/openid-connect/jwks`,
    grant_types: ["client_credentials"],
  });
}, 30_000);

afterAll(async () => {
  await gw?.stop();
  await idp?.stop();
  upstream?.stop();
});

const call = async (route: string) => (await fetch(`${gw.proxyUrl}/${route}`)).status;

describe("a rotation the IdP has not seen yet", () => {
  it("fails no request: the previous key signs until the delay passes, then an invalid_client is retried with it", async () => {
    expect(await call("first")).toBe(200);
    const fetches = (await idp.stats()).clientJwksFetches.rollover ?? 0;
    expect(fetches).toBeGreaterThan(0);
    expect((await fetch(`${gw.adminUrl}/openid-connect/jwks`, { method: "DELETE" })).status).toBe(204);
    expect(await call("after-rotation")).toBe(200);
    await Bun.sleep(2500); // past rotation_signing_delay: the new key signs, the IdP still has the old JWKS
    expect(await call("after-delay")).toBe(200);
  });

  it("with ?immediate=true (a compromised key), signs with the new key at once and never with the old one", async () => {
    const before = (await (await fetch(`${gw.adminUrl}/openid-connect/jwks`)).json()) as { keys: { kid: string }[] };
    expect((await fetch(`${gw.adminUrl}/openid-connect/jwks?immediate=true`, { method: "DELETE" })).status).toBe(204);
    const rotated = await gw.waitForLog((l) => l.event === "keys.rotated" && l.immediate === true);
    expect(before.keys.map((k) => k.kid)).toEqual(expect.arrayContaining(rotated.retired));
    // The IdP still holds a JWKS without the new key, and no retry with the old key is made.
    expect(await call("after-fetch")).toBe(503);
  });
});
