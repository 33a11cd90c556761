/**
 * Secrets out of gateway.toml: `{vault://env/…}` and `{vault://file/…}` references, resolved by
 * the real gateway at start, on reload and by `check`, against the real IdP.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { defaultRuntime, simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { SERVICE_SECRET, startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

const ROOT = resolve(import.meta.dir, "../..");
const SALT = "a-salt-that-lives-only-in-the-environment-0123456789";
let idp: IdpProcess;
let upstream: EchoUpstream;

beforeAll(async () => {
  idp = await startIdpProcess();
  upstream = await startEchoUpstream();
});
afterAll(async () => {
  await idp?.stop();
  await upstream?.stop();
});

const introspection = (secret: string) =>
  `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "${"{{issuer}}"}"\nauth_methods = ["introspection"]\nclient_id = "service"\nclient_secret = "${secret}"\ncache_tokens_salt = "{vault://env/oidc-salt}"\n`;

describe("vault references", () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await startGateway({
      config: simpleConfig(`${upstream.url}/anything`, introspection("{vault://file/client-secret}").replace("{{issuer}}", idp.issuer)),
      files: { "client-secret": `${SERVICE_SECRET}\n` },
      env: { OIDC_SALT: SALT },
    });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it("take the client secret from a file and the salt from the environment: introspection works", async () => {
    const { access_token } = await idp.token("opaque", "opaque-secret");
    const r = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: `Bearer ${access_token}` } });
    expect(r.status).toBe(200);
  });

  it("show the reference in the admin API, never the value", async () => {
    const text = await (await fetch(`${gw.adminUrl}/plugins`)).text();
    expect(text).toContain("{vault://env/oidc-salt}");
    expect(text).not.toContain(SALT);
    expect(text).not.toContain(SERVICE_SECRET);
  });

  it("are resolved again on reload: a changed secret file is read", async () => {
    writeFileSync(join(gw.dir, "client-secret"), "not-the-secret");
    expect((await fetch(`${gw.adminUrl}/config/reload`, { method: "POST", headers: { "x-admin": "test" } })).status).toBe(200);
    const { access_token } = await idp.token("opaque", "opaque-secret");
    const r = await fetch(`${gw.proxyUrl}/anything`, { headers: { authorization: `Bearer ${access_token}` } });
    expect(r.status).not.toBe(200); // the IdP refuses the gateway's client now
    writeFileSync(join(gw.dir, "client-secret"), SERVICE_SECRET);
    expect((await fetch(`${gw.adminUrl}/config/reload`, { method: "POST", headers: { "x-admin": "test" } })).status).toBe(200);
  });

  it("refuse to start when a reference does not resolve, naming the key and the reference", async () => {
    const bad = await startGateway({
      config: simpleConfig(`${upstream.url}/anything`, introspection("{vault://env/no-such-secret}").replace("{{issuer}}", idp.issuer)),
      env: { OIDC_SALT: SALT },
      waitForAdmin: false,
    });
    expect(await bad.exited).toBe(1);
    const out = bad.output.join("\n");
    expect(out).toContain(
      "plugins[0].config.client_secret: the vault reference {vault://env/no-such-secret} does not resolve: the environment variable NO_SUCH_SECRET is not set",
    );
    expect(out).not.toContain(SALT);
  });

  it.skipIf(defaultRuntime !== "binary")("are resolved by check too", () => {
    const file = join(gw.dir, "check.toml");
    writeFileSync(
      file,
      simpleConfig("http://127.0.0.1:1/", introspection("{vault://env/missing-one}").replace("{{issuer}}", idp.issuer))
        .replaceAll("{{proxy}}", "1")
        .replaceAll("{{admin}}", "2"),
    );
    const r = spawnSync(join(ROOT, "dist/oidc-gateway"), ["check", "-c", file], { env: { ...process.env, OIDC_SALT: SALT }, encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("{vault://env/missing-one}");
  });
});
