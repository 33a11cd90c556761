/**
 * Decision mode beside an existing proxy: real nginx (`auth_request`) and real Caddy
 * (`forward_auth`, Traefik's convention) ask the real gateway's decision listener, which runs the
 * route's openid-connect plugin against the real IdP and answers with the upstream's headers.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { freePort, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { startCaddyForwardAuth, startNginxAuthRequest, type FrontProxy } from "../support/front-proxy.ts";
import { SERVICE_SECRET, startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
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
    config: `[server]
proxy_listen = "127.0.0.1:{{proxy}}"
admin_listen = "127.0.0.1:{{admin}}"
decision_listen = "127.0.0.1:${decisionPort}"
decision_path_prefix = "/ext-authz"

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

  it("reads Envoy's convention: the original path under decision_path_prefix", async () => {
    const r = await decide("/ext-authz/anything/x", { authorization: basic("service", SERVICE_SECRET) });
    expect(r.status).toBe(200);
    expect(r.headers.get("authorization")?.startsWith("Bearer ")).toBe(true);
    expect(await r.text()).toBe("");
  });

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
