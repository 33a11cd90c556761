/**
 * Spoofed identity headers never reach the upstream (issue 13, item 3; the CVE-2025-64484
 * class): CGI, WSGI and PHP upstreams fold `-`, `_` and `.` into one variable, so a caller's
 * `x_authenticated_user: admin` next to the gateway's `x-authenticated-user: service` would win.
 * On both listeners, with the compiled binary and under Deno.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { SERVICE_SECRET, startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { rawExchange } from "../support/raw-http.ts";
import { echoUpstreamForFile, listenerTargets, tlsServerConfig } from "../support/tls-gateway.ts";

const RUNTIMES = ["binary", "deno"] as const;

const upstream = echoUpstreamForFile();
let idp: IdpProcess;
let accessToken: string;

beforeAll(async () => {
  idp = await startIdpProcess();
  accessToken = (await idp.token("service", SERVICE_SECRET)).access_token;
}, 30_000);

afterAll(async () => {
  await idp?.stop();
});

function config(underscores: boolean): string {
  return `${tlsServerConfig({ server: `shutdown_timeout = 2000\nunderscores_in_headers = ${underscores}` })}
[[services]]
name = "echo"
url = "${upstream.url}/anything"

[[routes]]
name = "protected"
service = "echo"
paths = ["/protected"]

[[routes]]
name = "open"
service = "echo"
paths = ["/open"]

[[plugins]]
name = "openid-connect"
route = "protected"
[plugins.config]
issuer = "${idp.issuer}"
auth_methods = ["bearer"]
upstream_headers_claims = ["client_id"]
upstream_headers_names = ["X-Authenticated-User"]
`;
}

/** Spoofed names a caller sends, each with the value "admin". */
const SPOOFED = [
  "x_authenticated_user",
  "X.Authenticated.User",
  "X-AUTHENTICATED_USER",
  "X_Forwarded_User",
  "x-forwarded-user",
  "ssl-client-cert",
  "ssl_client_cert",
  "x-client-dn",
  "remote-user",
  "x-remote-user",
  "remote_user",
  "x-authenticated-groups",
  "x-consumer-username",
  "x-auth-request-user",
  "x-amzn-oidc-identity",
];

function request(path: string, id: string, extra: string[] = []): string {
  return [
    `GET ${path} HTTP/1.1`,
    "Host: localhost",
    `X-Request-Id: ${id}`,
    `Authorization: Bearer ${accessToken}`,
    ...SPOOFED.map((n) => `${n}: admin`),
    ...extra,
    "Connection: close",
    "",
    "",
  ].join("\r\n");
}

for (const runtime of RUNTIMES) {
  for (const underscores of [false, true]) {
    describe(`header hygiene on ${runtime} with underscores_in_headers = ${underscores}`, () => {
      let gateway: GatewayProcess;
      const targets = () => listenerTargets(gateway);

      beforeAll(async () => {
        gateway = await startGateway({ runtime, config: config(underscores) });
      }, 60_000);
      afterAll(async () => {
        await gateway?.stop();
      });

      for (const listener of ["plain", "mtls"] as const) {
        it(`on the ${listener} listener, the upstream sees only the gateway's X-Authenticated-User and none of the spoofed identity headers`, async () => {
          const id = `${runtime}-${listener}-${underscores}-${crypto.randomUUID()}`;
          const answer = await rawExchange(targets()[listener]!, request("/protected", id));
          expect(answer.statuses).toEqual([200]);
          const seen = upstream.seen.find((s) => s.headers["x-request-id"] === id)!;
          expect(seen.headers["x-authenticated-user"]).toBe("service");
          for (const name of SPOOFED.filter((n) => n.toLowerCase() !== "x-authenticated-user")) {
            if (name.toLowerCase() === "x-forwarded-user") continue;
            expect({ [name]: seen.headers[name.toLowerCase()] }).toEqual({ [name]: undefined });
          }
          expect(Object.values(seen.headers)).not.toContain("admin");
        });

        it(`on the ${listener} listener, a route without plugins ${underscores ? "forwards" : "drops"} other underscore names and still drops identity headers`, async () => {
          const id = `${runtime}-${listener}-open-${underscores}-${crypto.randomUUID()}`;
          const answer = await rawExchange(targets()[listener]!, request("/open", id, ["X_Custom: 1", "X-Plain: 2"]));
          expect(answer.statuses).toEqual([200]);
          const seen = upstream.seen.find((s) => s.headers["x-request-id"] === id)!;
          expect(seen.headers.x_custom).toBe(underscores ? "1" : undefined);
          expect(seen.headers["x-plain"]).toBe("2");
          expect(Object.values(seen.headers)).not.toContain("admin");
        });
      }
    });
  }
}
