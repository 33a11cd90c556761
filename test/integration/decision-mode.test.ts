/**
 * Decision mode beside an existing proxy: real nginx (`auth_request`) and real Caddy
 * (`forward_auth`, Traefik's convention) ask the real gateway's decision listener, which runs the
 * route's openid-connect plugin against the real IdP and answers with the upstream's headers.
 * Envoy's HTTP ext_authz has no Debian package: its check request is sent here as Envoy builds it
 * (its ext_authz_http_impl: the original method, `path_prefix` + the original path and query, the
 * original Host, `Authorization`, the allowed headers, `Content-Length: 0` and no body) and its
 * answer read as Envoy reads it.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { freePort, serverTable, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { startCaddyForwardAuth, startNginxAuthRequest, type FrontProxy } from "../support/front-proxy.ts";
import { SERVICE_SECRET, startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { connect } from "../support/raw-http.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

let idp: IdpProcess;
let upstream: EchoUpstream;
let gw: GatewayProcess;
let decisionPort: number;
const fronts: Record<string, FrontProxy> = {};

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;
const payload = (jwt: string) => JSON.parse(Buffer.from(jwt.split(".")[1]!, "base64url").toString());

beforeAll(async () => {
  idp = await startIdpProcess();
  upstream = await startEchoUpstream();
  decisionPort = await freePort();
  gw = await startGateway({
    config: `${serverTable(`decision_listen = "127.0.0.1:${decisionPort}"\ndecision_path_prefix = "/ext-authz"`)}
[[services]]
name = "api"
url = "http://127.0.0.1:1"

[[routes]]
name = "api"
service = "api"
paths = ["/anything"]

[[routes]]
name = "closed"
service = "api"
paths = ["/closed"]

[[routes]]
name = "by-host"
service = "api"
hosts = ["api.example"]
paths = ["/h"]

[[plugins]]
name = "request-termination"
route = "by-host"
[plugins.config]
status_code = 418
message = "routed by host"

[[plugins]]
name = "openid-connect"
route = "api"
[plugins.config]
issuer = "${idp.issuer}"
auth_methods = ["client_credentials"]

[[plugins]]
name = "request-termination"
route = "closed"
[plugins.config]
status_code = 403
message = "closed"
`,
  });
  const upstreamPort = Number(new URL(upstream.url).port);
  fronts.nginx = await startNginxAuthRequest(decisionPort, upstreamPort);
  fronts.caddy = await startCaddyForwardAuth(decisionPort, upstreamPort);
});
afterAll(async () => {
  await Promise.all(Object.values(fronts).map((f) => f.stop()));
  await gw?.stop();
  await idp?.stop();
  await upstream?.stop();
});

describe.each(["nginx", "caddy"])("%s in front of the decision listener", (name) => {
  it("lets valid client credentials through, and the upstream gets the gateway's Bearer token instead of the secret", async () => {
    const r = await fetch(`${fronts[name]!.url}/anything/orders?x=1`, { headers: { authorization: basic("service", SERVICE_SECRET) } });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { headers: Record<string, string> };
    const auth = body.headers.authorization!;
    expect(auth.startsWith("Bearer ")).toBe(true);
    expect(payload(auth.slice(7)).client_id).toBe("service");
    expect(JSON.stringify(body)).not.toContain(SERVICE_SECRET);
  });

  it("answers a wrong secret with 401 and the gateway's challenge, and the upstream never sees it", async () => {
    const before = upstream.seen.length;
    const r = await fetch(`${fronts[name]!.url}/anything/orders`, { headers: { authorization: basic("service", "wrong") } });
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate") ?? "").toContain("Basic");
    expect(upstream.seen.length).toBe(before);
  });

  it("routes by the original path: another route's plugin decides", async () => {
    const r = await fetch(`${fronts[name]!.url}/closed`);
    expect(r.status).toBe(403);
  });
});

describe("the decision listener itself", () => {
  const decide = (path: string, headers: Record<string, string>) => fetch(`http://127.0.0.1:${decisionPort}${path}`, { headers });

  it("answers 404 for a request no route matches, and 400 when it cannot tell what the original request was", async () => {
    expect((await decide("/", { "x-original-uri": "/nowhere" })).status).toBe(404);
    expect((await decide("/elsewhere", {})).status).toBe(400);
    expect((await decide("/", { "x-original-uri": "http://evil/" })).status).toBe(400);
  });

  it("proxies nothing", async () => {
    const before = upstream.seen.length;
    await decide("/", { "x-original-uri": "/anything", authorization: basic("service", SERVICE_SECRET) });
    expect(upstream.seen.length).toBe(before);
  });
});

/**
 * Envoy's check request to an HTTP authorization service, as its ext_authz_http_impl builds it:
 * `Content-Length: 0`, then only the client headers allowed (`Authorization`, `:method`,
 * `:path` with `path_prefix` in front, `Host`, plus `allowed_headers`), no body. Sent raw so that
 * no client library adds anything; the answer is read as Envoy reads it.
 */
async function envoyCheck(method: string, path: string, host: string, allowed: Record<string, string> = {}) {
  const lines = [
    `${method} /ext-authz${path} HTTP/1.1`,
    "content-length: 0",
    `host: ${host}`,
    ...Object.entries(allowed).map(([k, v]) => `${k}: ${v}`),
  ];
  const text = await oneAnswer(`${lines.join("\r\n")}\r\n\r\n`);
  const [head, ...rest] = text.split("\r\n\r\n");
  const [status, ...fields] = head!.split("\r\n");
  const headers = new Headers();
  for (const f of fields) headers.append(f.slice(0, f.indexOf(":")), f.slice(f.indexOf(":") + 1).trim());
  return { status: Number(status!.split(" ")[1]), headers, body: rest.join("\r\n\r\n") };
}

/**
 * Sends `bytes` to the decision listener on a connection kept alive, as Envoy's is, and reads
 * one whole answer: its head, then its Content-Length or chunked body (however slow the gateway).
 */
function oneAnswer(bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const done = (error?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(text);
    };
    const whole = () => {
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return false;
      const head = text.slice(0, end);
      if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) return text.endsWith("\r\n0\r\n\r\n");
      return text.length >= end + 4 + Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
    };
    const socket = connect({ port: decisionPort }, (s) => s.write(bytes));
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      text += d;
      if (whole()) done();
    });
    socket.on("error", (e) => done(e));
    socket.on("close", () => done(whole() ? undefined : new Error(`the connection closed before a whole answer: ${JSON.stringify(text)}`)));
    const timer = setTimeout(() => done(new Error(`no whole answer within 20 s: ${JSON.stringify(text)}`)), 20_000);
  });
}

describe("Envoy's HTTP ext_authz convention (its check request mirrored: no Debian Envoy)", () => {
  it("allows valid client credentials with 200 and the headers for allowed_upstream_headers (the gateway's Bearer, not the secret)", async () => {
    const r = await envoyCheck("POST", "/anything/orders?x=1", "shop.example", { authorization: basic("service", SERVICE_SECRET) });
    expect(r.status).toBe(200);
    const auth = r.headers.get("authorization")!;
    expect(auth.startsWith("Bearer ")).toBe(true);
    expect(payload(auth.slice(7)).client_id).toBe("service");
    expect(r.body).not.toContain(SERVICE_SECRET);
  });

  it("routes by the original Host Envoy passes through, as the proxy listener would", async () => {
    expect((await envoyCheck("GET", "/h", "api.example")).status).toBe(418);
    expect((await envoyCheck("GET", "/h", "other.example")).status).toBe(404);
  });

  it("denies a wrong secret with 401 and the challenge, which Envoy hands to the client (allowed_client_headers unset: all)", async () => {
    const r = await envoyCheck("GET", "/anything/orders", "shop.example", { authorization: basic("service", "wrong") });
    expect(r.status).toBe(401);
    expect(r.headers.get("www-authenticate") ?? "").toContain("Basic");
  });

  it("answers the IdP's failure with a 5xx, which Envoy turns into status_on_error (403 unless set), never a 401", async () => {
    await idp.fail(500, { count: 3, targets: ["token"] });
    try {
      const r = await envoyCheck("GET", "/anything/orders", "shop.example", {
        authorization: basic("service", "another-secret-for-a-fresh-cache-key"),
      });
      expect(r.status).toBeGreaterThanOrEqual(500);
    } finally {
      await idp.normal();
    }
  });
});
