/**
 * Responses stream on every listener (Bun.serve; node:http with `strict_listener` and on Deno),
 * and a caller that leaves while its response is still streaming ends the upstream exchange too.
 * The upstream here streams without end, so a response held back whole never starts, and only
 * the gateway giving up its side can close the upstream socket.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import * as http from "node:http";
import * as net from "node:net";
import { startGateway, serverTable, type GatewayProcess, type GatewayRuntime } from "../support/gateway-process.ts";

const VARIANTS: readonly { name: string; runtime: GatewayRuntime; server: string }[] = [
  { name: "the binary (Bun.serve)", runtime: "binary", server: "" },
  { name: "the binary with strict_listener (node:http)", runtime: "binary", server: "strict_listener = true" },
  { name: "deno (node:http)", runtime: "deno", server: "" },
];

/** An upstream that sends a chunk every 20 ms until its caller (the gateway) closes the connection. */
let upstream: http.Server;
let upstreamUrl = "";
const closedStreams: number[] = [];
let streamsOpened = 0;

beforeAll(async () => {
  upstream = http.createServer((_req, res) => {
    streamsOpened++;
    res.writeHead(200, { "content-type": "text/plain" });
    const chunk = "x".repeat(64 * 1024);
    const timer = setInterval(() => res.write(chunk), 20);
    res.on("close", () => {
      clearInterval(timer);
      closedStreams.push(performance.now());
    });
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  upstream.closeAllConnections();
  await new Promise((r) => upstream.close(r));
});

// A caller that stops reading is let go after client_header_timeout (node:http) or keepalive_timeout (Bun.serve's idleTimeout).
const config = (server: string) => `${serverTable(`${server}\nclient_header_timeout = 1500\nkeepalive_timeout = 2000`)}
[[services]]
name = "stream"
url = "${upstreamUrl}"
read_timeout = 60000

[[routes]]
name = "stream"
service = "stream"
paths = ["/"]
`;

const GET = "GET /stream HTTP/1.1\r\nHost: localhost\r\n\r\n";

/** Sends `request`, reads the response head and some of the body, then drops the connection; rejects when no 64 KiB came within 10 s. */
function readSomeThenLeave(port: number, request = GET): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => socket.write(request));
    let received = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`only ${received.length} bytes within 10 s: ${JSON.stringify(received.slice(0, 80))}`));
    }, 10_000);
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      received += d;
      if (received.length > 64 * 1024) {
        clearTimeout(timer);
        socket.destroy();
        resolve(received.slice(0, received.indexOf("\r\n")));
      }
    });
    socket.on("error", reject);
  });
}

/** Waits until the upstream saw one more of its streams closed; false after 20 s. */
async function upstreamClosedOneMore(before: number): Promise<boolean> {
  const deadline = performance.now() + 20_000;
  while (closedStreams.length === before && performance.now() < deadline) await Bun.sleep(50);
  return closedStreams.length === before + 1;
}

for (const { name, runtime, server } of VARIANTS) {
  describe(`an endless streamed response on ${name}`, () => {
    let gateway: GatewayProcess;
    beforeAll(async () => {
      gateway = await startGateway({ config: config(server), runtime });
    }, 60_000);
    afterAll(async () => {
      await gateway?.stop();
    });

    it("ends the upstream exchange when the caller leaves, instead of holding it while the upstream streams", async () => {
      const before = closedStreams.length;
      const opened = streamsOpened;
      expect(await readSomeThenLeave(gateway.ports.proxy)).toBe("HTTP/1.1 200 OK");
      expect(streamsOpened).toBe(opened + 1);
      expect(await upstreamClosedOneMore(before)).toBe(true);
    }, 30_000);

    // node:http hands a request with `Connection: upgrade` to its upgrade handler, which answered with the body read whole.
    it("streams the answer to a request with an Upgrade header that is not a WebSocket handshake", async () => {
      const before = closedStreams.length;
      const upgrade = "GET /stream HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
      expect(await readSomeThenLeave(gateway.ports.proxy, upgrade)).toBe("HTTP/1.1 200 OK");
      expect(await upstreamClosedOneMore(before)).toBe(true);
    }, 30_000);

    it("lets a caller go that stops reading, and ends the upstream exchange with it", async () => {
      const before = closedStreams.length;
      const socket = net.connect({ host: "127.0.0.1", port: gateway.ports.proxy }, () => socket.write(GET));
      socket.on("error", () => {});
      // Reads the head, then nothing more: the gateway's writes back up.
      await new Promise<void>((r) => socket.once("data", () => r()));
      socket.pause();
      try {
        expect(await upstreamClosedOneMore(before)).toBe(true);
      } finally {
        socket.destroy();
      }
    }, 30_000);
  });
}
