/**
 * What the proxy's fast path must keep (bench/, docs/benchmarks.md): small response bodies are
 * read whole but still bounded by read_timeout, a failed small body is a clean 502, HEAD keeps
 * the upstream's Content-Length, and a caller that goes away still cancels the upstream request.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { request as httpRequest } from "node:http";
import { createServer, type Server, type Socket } from "node:net";
import { simpleConfig, startGateway, type GatewayProcess } from "../support/gateway-process.ts";

/** An upstream that misbehaves on purpose, at the socket level. */
let upstream: Server;
let upstreamPort = 0;
/** When the upstream saw the connection of a `/hang` request close (ms since epoch). */
const hangClosed: number[] = [];
let gw: GatewayProcess;

beforeAll(async () => {
  upstream = createServer((socket: Socket) => {
    socket.once("data", (chunk) => {
      const line = chunk.toString("latin1").split("\r\n")[0] ?? "";
      const path = line.split(" ")[1] ?? "/";
      if (path === "/hang") {
        socket.on("close", () => hangClosed.push(Date.now()));
        return; // never answers
      }
      if (path === "/short-body") {
        // Promises 100 bytes, sends 5, then closes the connection.
        socket.end("HTTP/1.1 200 OK\r\ncontent-length: 100\r\ncontent-type: text/plain\r\n\r\nhello");
        return;
      }
      if (path === "/stall-small-body") {
        // Promises 100 bytes, sends 5, then nothing, ever.
        socket.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\ncontent-type: text/plain\r\n\r\nhello");
        return;
      }
      socket.end("HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\nx-upstream: yes\r\n\r\nok");
    });
    socket.on("error", () => {});
  });
  await new Promise<void>((ok) => upstream.listen(0, "127.0.0.1", ok));
  upstreamPort = (upstream.address() as { port: number }).port;
  gw = await startGateway({ config: simpleConfig(`http://127.0.0.1:${upstreamPort}`).replace("read_timeout = 2000", "read_timeout = 800") });
});

afterAll(async () => {
  await gw?.stop();
  upstream?.close();
});

describe("the proxy's fast path", () => {
  it("answers a small body in one piece with its headers", async () => {
    const res = await fetch(`${gw.proxyUrl}/ok`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe("2");
    expect(res.headers.get("x-upstream")).toBe("yes");
    expect(await res.text()).toBe("ok");
  });

  it("keeps the upstream's Content-Length on HEAD", async () => {
    const res = await fetch(`${gw.proxyUrl}/ok`, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-length")).toBe("2");
  });

  it("answers 502 when the upstream closes before the body it announced", async () => {
    const res = await fetch(`${gw.proxyUrl}/short-body`);
    expect(res.status).toBe(502);
  });

  it("answers 504 when a small body stalls longer than read_timeout", async () => {
    const started = performance.now();
    const res = await fetch(`${gw.proxyUrl}/stall-small-body`);
    expect(res.status).toBe(504);
    expect(performance.now() - started).toBeLessThan(3000);
  });

  for (const leaveAfter of [50, 300]) {
    it(`cancels the upstream request soon after the caller goes away (after ${leaveAfter} ms)`, async () => {
      const before = hangClosed.length;
      const gone = await new Promise<number>((ok) => {
        const req = httpRequest(`${gw.proxyUrl}/hang`, { agent: false });
        req.on("error", () => {});
        req.end();
        setTimeout(() => {
          req.destroy();
          ok(Date.now());
        }, leaveAfter);
      });
      const deadline = Date.now() + 5000;
      while (hangClosed.length === before && Date.now() < deadline) await Bun.sleep(20);
      expect(hangClosed.length).toBeGreaterThan(before);
      // Long before the header deadline (connect_timeout + read_timeout = 2.8 s): the caller's leaving did it.
      expect(hangClosed.at(-1)! - gone).toBeLessThan(600);
    });
  }
});
