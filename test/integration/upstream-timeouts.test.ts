/**
 * Kong's upstream timeouts, as a new user reads them: connect_timeout bounds TCP + TLS connect
 * only, write_timeout the gap between two writes of the request, read_timeout the gap between
 * two reads of the response, including the wait for the headers. Each ends in Kong's 504.
 * And a keep-alive connection the upstream closed while idle never costs a caller an error.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { request as httpRequest } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { serverTable, startGateway, type GatewayProcess } from "../support/gateway-process.ts";

const KONG_504 = { message: "The upstream server is timing out" };

let upstream: Server;
let port = 0;
/** Accepts TCP and then says nothing: a TLS handshake with it never completes. */
let mute: Server;
let mutePort = 0;
let connections = 0;
let gw: GatewayProcess;

beforeAll(async () => {
  upstream = createServer((socket: Socket) => {
    connections++;
    socket.on("error", () => {});
    let buffered = "";
    socket.on("data", (chunk) => {
      buffered += chunk.toString("latin1");
      const end = buffered.indexOf("\r\n\r\n");
      if (end < 0) return;
      const path = buffered.split(" ")[1] ?? "/";
      buffered = "";
      if (path === "/slow") {
        // Headers after 3 s, far past read_timeout, well within connect_timeout + read_timeout.
        setTimeout(() => socket.end("HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nlate"), 3000);
      } else if (path === "/upload") {
        // Reads the body forever; the caller below stalls its upload.
      } else if (path === "/close-after") {
        // Keep-alive answer, then the upstream closes the idle connection (its own idle timeout).
        socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        setTimeout(() => socket.end(), 50);
      } else socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    });
  });
  mute = createServer((socket) => socket.on("error", () => {}));
  await new Promise<void>((ok) => upstream.listen(0, "127.0.0.1", ok));
  await new Promise<void>((ok) => mute.listen(0, "127.0.0.1", ok));
  port = (upstream.address() as { port: number }).port;
  mutePort = (mute.address() as { port: number }).port;
  gw = await startGateway({
    config: `${serverTable()}
[[services]]
name = "reads"
url = "http://127.0.0.1:${port}"
read_timeout = 1000

[[services]]
name = "writes"
url = "http://127.0.0.1:${port}"
write_timeout = 1000

[[services]]
name = "tls"
url = "https://127.0.0.1:${mutePort}"
connect_timeout = 1000

[[routes]]
name = "reads"
service = "reads"
paths = ["/r"]

[[routes]]
name = "writes"
service = "writes"
paths = ["/w"]

[[routes]]
name = "tls"
service = "tls"
paths = ["/t"]
`,
  });
});

afterAll(async () => {
  await gw?.stop();
  upstream?.close();
  mute?.close();
});

describe("Kong's upstream timeouts", () => {
  it("read_timeout = 1000 with the default connect_timeout answers 504 after about 1 s, not when the upstream answers", async () => {
    const started = performance.now();
    const res = await fetch(`${gw.proxyUrl}/r/slow`);
    const elapsed = performance.now() - started;
    expect(res.status).toBe(504);
    expect(await res.json()).toEqual(KONG_504);
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(elapsed).toBeLessThan(2500);
  });

  it("a stalled upload answers 504 after write_timeout", async () => {
    const started = performance.now();
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${gw.proxyUrl}/w/upload`, { method: "POST", headers: { "content-length": "1000" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.write("x".repeat(10)); // then nothing: the other 990 bytes never come
    });
    const elapsed = performance.now() - started;
    expect(status).toBe(504);
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(elapsed).toBeLessThan(3000);
  });

  it("an upstream that accepts TCP but never completes TLS answers 504 after connect_timeout", async () => {
    const started = performance.now();
    const res = await fetch(`${gw.proxyUrl}/t/`);
    const elapsed = performance.now() - started;
    expect(res.status).toBe(504);
    expect(await res.json()).toEqual(KONG_504);
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(elapsed).toBeLessThan(3000);
  });

  it("an idle keep-alive connection the upstream closed does not fail the next request", async () => {
    const before = connections;
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${gw.proxyUrl}/r/close-after`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe("ok");
      await new Promise((r) => setTimeout(r, 150));
    }
    expect(connections - before).toBe(3);
  });

  it("reuses one upstream connection for sequential requests", async () => {
    const before = connections;
    for (let i = 0; i < 5; i++) expect(await (await fetch(`${gw.proxyUrl}/r/ok`)).text()).toBe("ok");
    expect(connections - before).toBeLessThanOrEqual(1);
  });
});
