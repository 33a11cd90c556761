/**
 * Encoded traversal cannot move a request to another route's upstream path (issue 13, item 4):
 * routes `/public` (no plugin) and `/admin` (request-termination 403). An upstream that
 * decodes `%2F`, strips `;` parameters (Tomcat, Spring) or treats `\` as `/` would serve
 * `/admin` without its plugin, so such paths are refused by default (`escaped_slashes = "reject"`),
 * forwarded untouched with `"keep"`, or unescaped before routing with `"unescape"`.
 * On both listeners, with the compiled binary and under Deno.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { rawExchange, type RawTarget } from "../support/raw-http.ts";
import { echoUpstreamForFile, listenerTargets, tlsServerConfig } from "../support/tls-gateway.ts";

const RUNTIMES = ["binary", "deno"] as const;
const ENCODED = ["/public/..%2fadmin", "/public%2f..%2fadmin", "/public/..%5cadmin", "/%2fadmin", "/public/%2e%2e%2fadmin", "/public/..%2Fadmin/x"];
const PARAMETERS = ["/public/..;/admin", "/public/.;/admin", "/public/..;jsessionid=x/admin"];

const upstream = echoUpstreamForFile();

function config(mode: string): string {
  return `${tlsServerConfig({ server: `shutdown_timeout = 2000\nescaped_slashes = "${mode}"` })}
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
      const targets = () => listenerTargets(gateway);
      beforeAll(async () => {
        gateway = await startGateway({ runtime, config: config(mode) });
      }, 60_000);
      afterAll(async () => {
        await gateway?.stop();
      });

      for (const listener of ["plain", "mtls"] as const) {
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
