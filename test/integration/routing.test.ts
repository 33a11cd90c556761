/**
 * Kong's route priorities through the real gateway, and a generated 11 000-route config
 * (issue 19): the right route answers its first, middle and last routes, before and after a reload.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { generateRoutes, probe, routesToml } from "../../bench/lib/generated-routes.ts";
import { cert, ensureCerts } from "../support/certs.ts";
import { startGateway, type GatewayProcess, serverTable } from "../support/gateway-process.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

let upstream: EchoUpstream;
beforeAll(() => {
  upstream = startEchoUpstream();
});
afterAll(async () => {
  await upstream.stop();
});

const server = serverTable();

/** The route the gateway logged for the request with this id. */
async function routeOf(gw: GatewayProcess, res: Response): Promise<string | null> {
  const id = res.headers.get("x-request-id");
  const line = await gw.waitForLog((l) => l.event === "http.request" && l.request_id === id, 10_000);
  return line.route;
}

describe("Kong's matching priorities, end to end", () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await startGateway({
      config: `${server}
[[services]]
name = "echo"
url = "${upstream.url}/anything"

[[routes]]
name = "any"
service = "echo"
paths = ["/"]

[[routes]]
name = "int"
service = "echo"
hosts = ["internal.example"]

[[plugins]]
name = "request-termination"
route = "int"
[plugins.config]
status_code = 403
message = "internal only"
`,
    });
  });
  afterAll(async () => {
    await gw.stop();
  });

  it("sends a request for a route's host to that route, not to the catch-all path route (issue 13, item 5)", async () => {
    const res = await fetch(`${gw.proxyUrl}/anything`, { headers: { host: "internal.example" } });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ message: "internal only" });
  });

  it("sends other hosts to the catch-all route", async () => {
    const res = await fetch(`${gw.proxyUrl}/x`, { headers: { host: "public.example" } });
    expect(res.status).toBe(200);
    expect(await routeOf(gw, res)).toBe("any");
  });
});

describe("Kong's route attributes and protocols, end to end", () => {
  let gw: GatewayProcess;
  const https = (gw: GatewayProcess, path: string, init: RequestInit = {}) =>
    fetch(`https://localhost:${gw.ports.proxyTls}${path}`, { ...init, tls: { ca: cert("ca.crt") } } as RequestInit);

  beforeAll(async () => {
    const certs = ensureCerts();
    gw = await startGateway({
      config: `[server]
proxy_listen = "127.0.0.1:{{proxy}}"
proxy_tls_listen = "127.0.0.1:{{proxy_tls}}"
admin_listen = "127.0.0.1:{{admin}}"
shutdown_timeout = 2000

[server.tls]
cert = "${certs}/gateway.crt"
key = "${certs}/gateway.key"

[[services]]
name = "echo"
url = "${upstream.url}/anything"

[[routes]]
name = "secure"
service = "echo"
paths = ["/secure"]
protocols = ["https"]

[[routes]]
name = "moved"
service = "echo"
paths = ["/moved"]
protocols = ["https"]
https_redirect_status_code = 301

[[routes]]
name = "api"
service = "echo"
paths = ["/api"]

[[routes]]
name = "api-v2"
service = "echo"
paths = ["/api"]
headers = { x-version = ["~*^v2$"] }

[[routes]]
name = "from-loopback"
service = "echo"
paths = ["/src"]
sources = [{ ip = "127.0.0.0/8" }]

[[routes]]
name = "from-lan"
service = "echo"
paths = ["/src"]
sources = [{ ip = "10.0.0.0/8" }]

[[routes]]
name = "by-sni"
service = "echo"
paths = ["/sni"]
snis = ["localhost"]
protocols = ["https"]

[[routes]]
name = "sockets"
service = "echo"
paths = ["/ws"]
protocols = ["ws", "wss"]
`,
    });
  });
  afterAll(async () => {
    await gw.stop();
  });

  it("answers HTTP on an HTTPS-only route with 426, Kong's body and Upgrade header", async () => {
    const res = await fetch(`${gw.proxyUrl}/secure`);
    expect(res.status).toBe(426);
    expect(res.headers.get("upgrade")).toBe("TLS/1.2, HTTP/1.1");
    expect(await res.json()).toEqual({ message: "Please use HTTPS protocol" });
  });

  it("proxies the same route over HTTPS", async () => {
    const res = await https(gw, "/secure/x");
    expect(res.status).toBe(200);
    expect(await routeOf(gw, res)).toBe("secure");
  });

  it("redirects to https with https_redirect_status_code", async () => {
    const res = await fetch(`${gw.proxyUrl}/moved/a?b=1`, { redirect: "manual", headers: { host: "api.example:8000" } });
    expect(res.status).toBe(301);
    expect(res.headers.get("location")).toBe("https://api.example/moved/a?b=1");
  });

  it("routes on a header regex, and without the header to the plain route", async () => {
    const v2 = await fetch(`${gw.proxyUrl}/api/x`, { headers: { "x-version": "V2" } });
    expect(await routeOf(gw, v2)).toBe("api-v2");
    const plain = await fetch(`${gw.proxyUrl}/api/x`, { headers: { "x-version": "v3" } });
    expect(await routeOf(gw, plain)).toBe("api");
  });

  it("routes on the client's address (sources)", async () => {
    const res = await fetch(`${gw.proxyUrl}/src`);
    expect(res.status).toBe(200);
    expect(await routeOf(gw, res)).toBe("from-loopback");
  });

  it("routes on the TLS server name (snis)", async () => {
    const res = await https(gw, "/sni");
    expect(res.status).toBe(200);
    expect(await routeOf(gw, res)).toBe("by-sni");
  });

  it("asks for a WebSocket upgrade on a ws/wss-only route", async () => {
    const res = await fetch(`${gw.proxyUrl}/ws`);
    expect(res.status).toBe(426);
    expect(res.headers.get("upgrade")).toBe("websocket");
    expect(await res.json()).toEqual({ message: "Please upgrade to WebSocket" });
  });
});

describe("Behind a trusted TLS-terminating balancer", () => {
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await startGateway({
      config: `${serverTable('trusted_ips = ["127.0.0.1"]')}

[[services]]
name = "echo"
url = "${upstream.url}/anything"

[[routes]]
name = "secure"
service = "echo"
paths = ["/secure"]
protocols = ["https"]
https_redirect_status_code = 308
`,
    });
  });
  afterAll(async () => {
    await gw.stop();
  });

  it("proxies an HTTPS-only route when the balancer says the client used https (X-Forwarded-Proto), as Kong", async () => {
    const res = await fetch(`${gw.proxyUrl}/secure`, { headers: { "x-forwarded-proto": "https" } });
    expect(res.status).toBe(200);
  });

  it("redirects to the host the client used (X-Forwarded-Host) when it used http", async () => {
    const res = await fetch(`${gw.proxyUrl}/secure?a=1`, {
      redirect: "manual",
      headers: { "x-forwarded-proto": "http", "x-forwarded-host": "shop.example" },
    });
    expect(res.status).toBe(308);
    expect(res.headers.get("location")).toBe("https://shop.example/secure?a=1");
  });
});

describe("11 000 generated routes (1 000 regex)", () => {
  const routes = generateRoutes(11_000, 1 / 11);
  let gw: GatewayProcess;
  beforeAll(async () => {
    gw = await startGateway({ config: routesToml(routes, upstream.url, server) });
    // The admin API can answer a moment before the proxy listener is bound on a busy machine.
    for (let i = 0; i < 100; i++) {
      const ok = await fetch(`${gw.proxyUrl}/nowhere`).then(
        (r) => r.arrayBuffer().then(() => true),
        () => false,
      );
      if (ok) break;
      await Bun.sleep(50);
    }
  }, 60_000);
  afterAll(async () => {
    await gw.stop();
  });

  const check = async () => {
    const regexIndex = routes.findLastIndex((r) => r.paths[0]!.startsWith("~"));
    for (const i of [0, 5_500, 10_999, regexIndex, 3]) {
      const p = probe(routes, i);
      const res = await fetch(`${gw.proxyUrl}${p.path}`, { headers: { host: p.host } });
      expect(res.status).toBe(200);
      expect(await routeOf(gw, res)).toBe(p.route);
    }
    const miss = await fetch(`${gw.proxyUrl}/nowhere`);
    expect(miss.status).toBe(404);
  };

  it("answers its first, middle, last and a regex route with the right route", check);

  it("answers the same after POST /config/reload", async () => {
    const res = await fetch(`${gw.adminUrl}/config/reload`, { method: "POST", headers: { "x-admin": "test" } });
    expect(res.status).toBe(200);
    await check();
  }, 60_000);
});
