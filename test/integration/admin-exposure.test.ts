/**
 * The admin API answers only its own callers (issue 13, item 8): DNS rebinding (a foreign
 * Host), cross-site requests (a foreign Origin, or a simple request a page could send) and,
 * when configured, callers without the admin token or the admin client certificate are
 * refused; `check` refuses an admin API beyond loopback with neither. Compiled binary and Deno.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { cert, ensureCerts } from "../support/certs.ts";
import { startGateway, type GatewayProcess, serverTable } from "../support/gateway-process.ts";
import { rawExchange } from "../support/raw-http.ts";
import { tempFolders } from "../support/temp.ts";

const RUNTIMES = ["binary", "deno"] as const;
const TOKEN = "admin-token-for-the-exposure-suite";

const base = (extra = "") => `${serverTable(extra)}

[[services]]
name = "echo"
url = "http://127.0.0.1:9/"

[[routes]]
name = "all"
service = "echo"
paths = ["/"]

[[plugins]]
name = "request-termination"
[plugins.config]
status_code = 403
`;

async function admin(gw: GatewayProcess, request: string) {
  const answer = await rawExchange({ port: gw.ports.admin }, request);
  return { status: answer.statuses[0], body: answer.text.slice(answer.text.indexOf("\r\n\r\n") + 4) };
}

for (const runtime of RUNTIMES) {
  describe(`the admin API on ${runtime}`, () => {
    let gw: GatewayProcess;
    let guarded: GatewayProcess;
    beforeAll(async () => {
      [gw, guarded] = await Promise.all([
        startGateway({ runtime, config: base() }),
        startGateway({ runtime, config: base(`admin_token = "${TOKEN}"`) }),
      ]);
    }, 60_000);
    afterAll(async () => {
      await Promise.all([gw?.stop(), guarded?.stop()]);
    });

    it("refuses a foreign Host (DNS rebinding) with 421, and answers loopback names", async () => {
      expect((await admin(gw, "GET /status HTTP/1.1\r\nHost: evil.rebind.example\r\nConnection: close\r\n\r\n")).status).toBe(421);
      expect((await admin(gw, `GET /services HTTP/1.1\r\nHost: evil.rebind.example:${gw.ports.admin}\r\nConnection: close\r\n\r\n`)).status).toBe(
        421,
      );
      for (const host of ["localhost", `localhost:${gw.ports.admin}`, `127.0.0.1:${gw.ports.admin}`]) {
        expect((await admin(gw, `GET /status HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)).status).toBe(200);
      }
    });

    it("refuses a state-changing request with a foreign Origin", async () => {
      const r = await admin(
        gw,
        "POST /config/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\nX-Admin: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
      );
      expect(r.status).toBe(403);
    });

    it("refuses a simple cross-site-shaped POST (no Authorization, no X- header, a form Content-Type)", async () => {
      expect(
        (
          await admin(
            gw,
            "POST /config/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
          )
        ).status,
      ).toBe(403);
      expect((await admin(gw, "POST /config/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")).status).toBe(403);
      expect(gw.logs().some((l) => l.event === "config.reloaded")).toBe(false);
    });

    it("accepts a same-origin POST with a non-simple header", async () => {
      const r = await admin(
        gw,
        `POST /config/reload HTTP/1.1\r\nHost: 127.0.0.1:${gw.ports.admin}\r\nOrigin: http://127.0.0.1:${gw.ports.admin}\r\nX-Requested-With: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      expect(r.status).toBe(200);
    });

    it("with admin_token, refuses a missing or wrong token with 401, accepts the right one, and leaves /status open", async () => {
      const get = (auth: string) => admin(guarded, `GET /services HTTP/1.1\r\nHost: 127.0.0.1\r\n${auth}Connection: close\r\n\r\n`);
      expect((await get("")).status).toBe(401);
      expect((await get("Authorization: Bearer wrong-token-wrong-token-wrong\r\n")).status).toBe(401);
      expect((await get(`Authorization: Bearer ${TOKEN}\r\n`)).status).toBe(200);
      expect((await admin(guarded, "GET /status/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")).status).toBe(200);
      expect(guarded.output.join("\n")).not.toContain(TOKEN);
    });

    it("shows bearer_token_param_type in /plugins (it is a setting, not a secret)", async () => {
      const one = await startGateway({
        runtime,
        config: `${base()}\n[[plugins]]\nname = "openid-connect"\nroute = "all"\n[plugins.config]\nissuer = "http://127.0.0.1:9/realms/x"\nbearer_token_param_type = ["header"]\n`,
      });
      try {
        const res = await fetch(`${one.adminUrl}/plugins`);
        const body = (await res.json()) as { data: { name: string; config: Record<string, unknown> }[] };
        expect(body.data.find((p) => p.name === "openid-connect")?.config.bearer_token_param_type).toEqual(["header"]);
      } finally {
        await one.stop();
      }
    }, 60_000);

    it("with admin_client_ca, serves the admin API over TLS to the JohnDoe certificate only", async () => {
      const certs = ensureCerts();
      const tls = `admin_client_ca = "${join(certs, "ca.crt")}"\n[server.tls]\ncert = "${join(certs, "gateway.crt")}"\nkey = "${join(certs, "gateway.key")}"`;
      const one = await startGateway({ runtime, config: base(tls), waitForAdmin: false });
      try {
        await one.waitForLog((l) => l.event === "gateway.started", 30_000);
        const request = "GET /services HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
        const ok = await rawExchange(
          { port: one.ports.admin, tls: { ca: cert("ca.crt"), cert: cert("client.crt"), key: cert("client.key") } },
          request,
        );
        expect(ok.statuses).toEqual([200]);
        const other = await rawExchange(
          { port: one.ports.admin, tls: { ca: cert("ca.crt"), cert: cert("other-client.crt"), key: cert("other-client.key") } },
          request,
        );
        expect(other.statuses).toEqual([400]);
        const none = await rawExchange({ port: one.ports.admin, tls: { ca: cert("ca.crt") } }, request);
        expect(none.statuses).toEqual([400]);
      } finally {
        await one.stop();
      }
    }, 60_000);
  });
}

describe("oidc-gateway check", () => {
  const BIN = resolve(import.meta.dir, "../../dist/oidc-gateway");
  const folder = tempFolders("oidc-gateway-admin-");
  const file = (server: string) => {
    const dir = folder();
    const path = join(dir, "gateway.toml");
    writeFileSync(
      path,
      `[server]\n${server}\n[[services]]\nname = "s"\nurl = "http://127.0.0.1:9/"\n[[routes]]\nname = "r"\nservice = "s"\npaths = ["/"]\n`,
    );
    return path;
  };

  it("refuses an admin API beyond loopback with neither admin_token nor admin_client_ca", () => {
    const r = Bun.spawnSync([BIN, "check", "-c", file('admin_listen = "0.0.0.0:8001"')]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toContain("server.admin_listen: expected 'admin_token' or 'admin_client_ca'");
  });

  it("accepts it with an admin_token", () => {
    const r = Bun.spawnSync([BIN, "check", "-c", file(`admin_listen = "0.0.0.0:8001"\nadmin_token = "${TOKEN}"`)]);
    expect(r.exitCode).toBe(0);
  });
});
