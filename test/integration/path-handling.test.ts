/**
 * Encoded traversal cannot move a request to another route's upstream path (issue 13, item 4):
 * routes `/public` (no plugin) and `/admin` (request-termination 403). An upstream that
 * decodes `%2F`, strips `;` parameters (Tomcat, Spring) or treats `\` as `/` would serve
 * `/admin` without its plugin, so such paths are refused by default (`escaped_slashes = "reject"`),
 * forwarded untouched with `"keep"`, or unescaped before routing with `"unescape"`.
 * On both listeners, with the compiled binary and under Deno.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { join } from "node:path";
import { cert, ensureCerts } from "../support/certs.ts";
import { startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { rawExchange, type RawTarget } from "../support/raw-http.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

const RUNTIMES = ["binary", "deno"] as const;
const ENCODED = ["/public/..%2fadmin", "/public%2f..%2fadmin", "/public/..%5cadmin", "/%2fadmin", "/public/%2e%2e%2fadmin", "/public/..%2Fadmin/x"];
const PARAMETERS = ["/public/..;/admin", "/public/.;/admin", "/public/..;jsessionid=x/admin"];

let upstream: EchoUpstream;
beforeAll(() => {
  ensureCerts();
  upstream = startEchoUpstream();
});
afterAll(() => upstream.stop());

function config(mode: string): string {
  const certs = ensureCerts();
  return `[server]
proxy_listen = "127.0.0.1:{{proxy}}"
proxy_tls_listen = "127.0.0.1:{{proxy_tls}}"
admin_listen = "127.0.0.1:{{admin}}"
shutdown_timeout = 2000
escaped_slashes = "${mode}"

[server.tls]
cert = "${join(certs, "gateway.crt")}"
key = "${join(certs, "gateway.key")}"
client_ca = "${join(certs, "ca.crt")}"

[[services]]
name = "echo"
url = "${upstream.url}"

[[routes]]
name = "public"
service = "echo"
paths = ["/public"]
strip_path = false

[[routes]]
name = "admin"
service = "echo"
paths = ["/admin"]
strip_path = false

[[plugins]]
name = "request-termination"
route = "admin"
[plugins.config]
status_code = 403
`;
}

async function get(target: RawTarget, path: string, id: string) {
  const answer = await rawExchange(target, `GET ${path} HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: ${id}\r\nConnection: close\r\n\r\n`);
  return { status: answer.statuses[0], forwarded: upstream.seen.find((s) => s.headers["x-request-id"] === id)?.path };
}

for (const runtime of RUNTIMES) {
  for (const mode of ["reject", "keep", "unescape"] as const) {
    describe(`path handling on ${runtime} with escaped_slashes = "${mode}"`, () => {
      let gateway: GatewayProcess;
      const targets = (): Record<string, RawTarget> => ({
        plain: { port: gateway.ports.proxy },
        mtls: { port: gateway.ports.proxyTls, tls: { ca: cert("ca.crt"), cert: cert("client.crt"), key: cert("client.key") } },
      });
      beforeAll(async () => {
        gateway = await startGateway({ runtime, config: config(mode) });
      }, 60_000);
      afterAll(async () => {
        await gateway?.stop();
      });

      for (const listener of ["plain", "mtls"]) {
        it(`on the ${listener} listener, ${mode === "reject" ? "refuses" : mode === "keep" ? "forwards untouched (or finds no route for)" : "routes as /admin"} an escaped slash`, async () => {
          for (const path of ENCODED) {
            const r = await get(targets()[listener]!, path, `${runtime}-${mode}-${listener}-${crypto.randomUUID()}`);
            if (mode === "reject") expect({ path, ...r }).toEqual({ path, status: 400, forwarded: undefined });
            else if (mode === "keep" && path === "/%2fadmin") expect({ path, ...r }).toEqual({ path, status: 404, forwarded: undefined });
            else if (mode === "keep")
              expect({ path, ...r, forwarded: r.forwarded?.toLowerCase() }).toEqual({
                path,
                status: 200,
                forwarded: path.replace(/%2e/g, ".").toLowerCase(),
              });
            else expect({ path, ...r }).toEqual({ path, status: 403, forwarded: undefined });
          }
        });

        it(`on the ${listener} listener, refuses a dot segment with ';' parameters`, async () => {
          for (const path of PARAMETERS) {
            const r = await get(targets()[listener]!, path, `${runtime}-${mode}-${listener}-${crypto.randomUUID()}`);
            expect({ path, ...r }).toEqual({ path, status: 400, forwarded: undefined });
          }
        });

        it(`on the ${listener} listener, still serves /public and refuses /admin`, async () => {
          expect((await get(targets()[listener]!, "/public/a", `${runtime}-ok-${crypto.randomUUID()}`)).status).toBe(200);
          expect((await get(targets()[listener]!, "/public/../admin", `${runtime}-dots-${crypto.randomUUID()}`)).status).toBe(403);
        });
      }
    });
  }
}
