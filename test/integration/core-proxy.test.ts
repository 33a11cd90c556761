/**
 * The gateway core, end to end: a real upstream, the real gateway process (the compiled binary
 * unless GATEWAY_RUNTIME says otherwise), real sockets.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { request as httpRequest } from "node:http";
import { freePort, simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";
import { waitUntil } from "../support/wait.ts";

let upstream: EchoUpstream;
let gw: GatewayProcess;

beforeAll(async () => {
  upstream = startEchoUpstream();
  gw = await startGateway({
    config: simpleConfig(
      `${upstream.url}/`,
      `
[[routes]]
name = "anything"
service = "echo"
paths = ["/anything"]
strip_path = false

[[routes]]
name = "closed"
service = "echo"
paths = ["/closed"]

[[plugins]]
name = "request-termination"
route = "closed"
[plugins.config]
status_code = 403
message = "closed for maintenance"
`,
    ),
  });
});

afterAll(async () => {
  await gw?.stop();
  await upstream?.stop();
});

/** A raw HTTP/1.1 request, so we can send headers fetch would refuse (Connection, Host). */
function rawGet(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((ok, fail) => {
    const req = httpRequest(url, { headers }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => ok({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", fail);
    req.end();
  });
}

describe("proxying", () => {
  it("forwards a request to the service and the answer back", async () => {
    const res = await fetch(`${gw.proxyUrl}/anything/x?a=1`);
    expect(res.status).toBe(200);
    const echo = (await res.json()) as { path: string; args: Record<string, string> };
    expect(echo.path).toBe("/anything/x");
    expect(echo.args).toEqual({ a: "1" });
  });

  it("answers 404 in Kong's words when no route matches", async () => {
    const gw2 = await startGateway({ config: simpleConfig(upstream.url).replace('paths = ["/"]', 'paths = ["/only"]') });
    try {
      const res = await fetch(`${gw2.proxyUrl}/elsewhere`);
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ message: "no Route matched with those values" });
    } finally {
      await gw2.stop();
    }
  });

  it("overwrites a spoofed X-Forwarded-For and sets the other X-Forwarded-* headers", async () => {
    const res = await rawGet(`${gw.proxyUrl}/anything`, {
      "x-forwarded-for": "6.6.6.6",
      "x-forwarded-host": "evil.test",
      "x-real-ip": "6.6.6.6",
      host: "gw.test",
    });
    const echo = JSON.parse(res.body) as { headers: Record<string, string> };
    expect(echo.headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(echo.headers["x-real-ip"]).toBe("127.0.0.1");
    expect(echo.headers["x-forwarded-host"]).toBe("gw.test");
    expect(echo.headers["x-forwarded-proto"]).toBe("http");
    expect(echo.headers["x-forwarded-port"]).toBe(String(gw.ports.proxy));
    expect(echo.headers["x-forwarded-path"]).toBe("/anything");
  });

  it("drops hop-by-hop headers and headers named in Connection, both ways", async () => {
    const res = await rawGet(`${gw.proxyUrl}/anything`, {
      connection: "keep-alive, x-hop",
      "x-hop": "secret",
      te: "trailers",
      "proxy-authorization": "Basic Zm9vOmJhcg==",
    });
    const echo = JSON.parse(res.body) as { headers: Record<string, string> };
    expect(echo.headers["x-hop"]).toBeUndefined();
    expect(echo.headers.te).toBeUndefined();
    expect(echo.headers["proxy-authorization"]).toBeUndefined();
    const back = await rawGet(`${gw.proxyUrl}/hop-by-hop`, {});
    expect(back.headers["x-upstream-private"]).toBeUndefined();
    expect(back.headers["keep-alive"]).toBeUndefined();
    expect(back.headers["x-kept"]).toBe("yes");
  });

  it("propagates a caller's X-Request-Id and makes one when there is none", async () => {
    const given = await fetch(`${gw.proxyUrl}/anything`, { headers: { "x-request-id": "trace-42" } });
    expect(given.headers.get("x-request-id")).toBe("trace-42");
    expect(((await given.json()) as { headers: Record<string, string> }).headers["x-request-id"]).toBe("trace-42");
    const made = await fetch(`${gw.proxyUrl}/anything`);
    expect(made.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("writes one JSON access log line per request, with its request id", async () => {
    await fetch(`${gw.proxyUrl}/anything/logged`, { headers: { "x-request-id": "log-me" } });
    const line = await gw.waitForLog((l) => l.event === "http.request" && l.request_id === "log-me");
    expect(line).toMatchObject({ method: "GET", path: "/anything/logged", route: "anything", service: "echo", status: 200 });
    expect(typeof line.latency_ms).toBe("number");
    expect(typeof line.upstream_latency_ms).toBe("number");
  });

  it("streams a 50 MB request body to the upstream without buffering it", async () => {
    const total = 50 * 1024 * 1024;
    const chunk = new Uint8Array(256 * 1024).fill(7);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent >= total) return c.close();
        c.enqueue(chunk);
        sent += chunk.length;
      },
    });
    const res = await fetch(`${gw.proxyUrl}/count`, { method: "POST", body, duplex: "half" } as RequestInit);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { bytes: number }).bytes).toBe(total);
  }, 60_000);

  it("streams a 50 MB response body back", async () => {
    const res = await fetch(`${gw.proxyUrl}/bytes/${50 * 1024 * 1024}`);
    let bytes = 0;
    for await (const c of res.body!) bytes += c.length;
    expect(bytes).toBe(50 * 1024 * 1024);
  }, 60_000);

  it("runs a route's plugin before the upstream (request-termination)", async () => {
    const res = await fetch(`${gw.proxyUrl}/closed/x`);
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ message: "closed for maintenance" });
  });
});

describe("upstream failures", () => {
  it("answers 502 in Kong's words when the upstream is down", async () => {
    const dead = await freePort();
    const g = await startGateway({ config: simpleConfig(`http://127.0.0.1:${dead}/`) });
    try {
      const started = performance.now();
      const res = await fetch(`${g.proxyUrl}/x`);
      expect(res.status).toBe(502);
      expect(await res.json()).toEqual({ message: "An invalid response was received from the upstream server" });
      expect(performance.now() - started).toBeLessThan(3000);
      // Our own failure is logged, under a name an operator can read (the binary keeps class names).
      const logged = await g.waitForLog((l) => l.event === "upstream.unavailable");
      expect(logged.error.name).toBe("UpstreamUnavailableError");
    } finally {
      await g.stop();
    }
  });

  it("answers 504 when the upstream is slower than its timeouts, and does not hang", async () => {
    const g = await startGateway({
      config: simpleConfig(`${upstream.url}/`).replace("connect_timeout = 2000\nread_timeout = 2000", "connect_timeout = 500\nread_timeout = 500"),
    });
    try {
      const started = performance.now();
      const res = await fetch(`${g.proxyUrl}/delay/5`);
      expect(res.status).toBe(504);
      expect(performance.now() - started).toBeLessThan(3000);
    } finally {
      await g.stop();
    }
  });

  it("gives up on a request body that stalls longer than write_timeout", async () => {
    const g = await startGateway({
      config: simpleConfig(`${upstream.url}/`).replace("read_timeout = 2000", "read_timeout = 2000\nwrite_timeout = 500"),
    });
    try {
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new Uint8Array(1024)); // then nothing more, ever
        },
      });
      const started = performance.now();
      const res = await fetch(`${g.proxyUrl}/count`, { method: "POST", body, duplex: "half" } as RequestInit).catch(() => undefined);
      if (res) expect(res.status).toBe(504);
      expect(performance.now() - started).toBeLessThan(3000);
    } finally {
      await g.stop();
    }
  });

  it("ends a response whose body stalls longer than read_timeout", async () => {
    const g = await startGateway({ config: simpleConfig(`${upstream.url}/`).replace("read_timeout = 2000", "read_timeout = 500") });
    try {
      const res = await fetch(`${g.proxyUrl}/stall-body`);
      expect(res.status).toBe(200);
      const started = performance.now();
      await res.text().catch(() => "");
      expect(performance.now() - started).toBeLessThan(3000);
    } finally {
      await g.stop();
    }
  });
});

describe("admin API", () => {
  it("reports status with counts", async () => {
    const status = (await (await fetch(`${gw.adminUrl}/status`)).json()) as Record<string, any>;
    expect(status.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(status.configuration).toEqual({ services: 1, routes: 3, plugins: 1 });
  });

  it("lists services, routes and plugins read-only, Kong-style", async () => {
    const services = (await (await fetch(`${gw.adminUrl}/services`)).json()) as { data: any[]; next: null };
    expect(services.data[0].name).toBe("echo");
    expect(services.next).toBeNull();
    expect((await fetch(`${gw.adminUrl}/services`, { method: "POST", headers: { "x-admin": "test" } })).status).toBe(404);
  });
});

describe("shutdown", () => {
  it("finishes an in-flight request on SIGTERM, then exits 0", async () => {
    const g = await startGateway({ config: simpleConfig(`${upstream.url}/`).replace("read_timeout = 2000", "read_timeout = 5000") });
    const id = `in-flight-${crypto.randomUUID()}`;
    const inflight = fetch(`${g.proxyUrl}/delay/1`, { headers: { "x-request-id": id } });
    // SIGTERM once the request has reached the upstream, however slow the machine is.
    await waitUntil("the request to reach the upstream", () => upstream.seen.some((s) => s.headers["x-request-id"] === id));
    g.signal("SIGTERM");
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ delayed: true });
    expect(await g.exited).toBe(0);
  });
});
