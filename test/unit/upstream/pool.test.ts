/**
 * The gateway's own HTTP/1.1 client and keep-alive pool, against raw socket servers that answer
 * with exact bytes: every framing, the malformed answers a strict parser refuses, keep-alive,
 * Kong's timeouts, TLS, and large bodies streamed both ways with bounded memory.
 */
import { afterAll, describe, expect, it } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { readFileSync } from "node:fs";
import { UpstreamTimeoutError, UpstreamUnavailableError } from "../../../src/errors.ts";
import { connect } from "../../../src/runtime/bun-socket.ts";
import { ConnectionPool, type Endpoint, type KeepaliveOptions, type UpstreamRequest, type UpstreamResponse } from "../../../src/upstream/pool.ts";

const keepalive: KeepaliveOptions = { poolSize: 60, maxRequests: 10_000, idleTimeoutMs: 60_000 };
const timeouts = { connect: 2000, write: 2000, read: 2000 };
const listeners: TCPSocketListener<unknown>[] = [];
afterAll(() => {
  for (const l of listeners) l.stop(true);
});

interface Conn {
  buffer: string;
  requests: number;
}

/** A raw server: `answer` gets each request head (body ignored) and writes whatever bytes it likes. */
function rawServer(answer: (head: string, socket: Socket<Conn>, index: number) => void, tls = false) {
  const stats = { connections: 0, requests: 0, heads: [] as string[] };
  const certs = tls ? { tls: { cert: readFileSync("certs/gateway.crt", "utf8"), key: readFileSync("certs/gateway.key", "utf8") } } : {};
  const listener = Bun.listen<Conn>({
    hostname: "127.0.0.1",
    port: 0,
    ...certs,
    socket: {
      open(socket) {
        stats.connections++;
        socket.data = { buffer: "", requests: 0 };
      },
      data(socket, data) {
        socket.data.buffer += new TextDecoder("latin1").decode(data);
        let end: number;
        while ((end = socket.data.buffer.indexOf("\r\n\r\n")) >= 0) {
          const head = socket.data.buffer.slice(0, end);
          socket.data.buffer = socket.data.buffer.slice(end + 4);
          stats.heads.push(head);
          answer(head, socket, stats.requests++);
        }
      },
    },
  });
  listeners.push(listener as TCPSocketListener<unknown>);
  return { port: listener.port, stats };
}

const get = (target = "/"): UpstreamRequest => ({
  method: "GET",
  target,
  host: "upstream.test",
  headers: new Headers({ accept: "*/*" }),
  body: null,
});

async function text(response: UpstreamResponse): Promise<string> {
  return new Response(response.body as BodyInit | null).text();
}

function poolFor(port: number, options: Partial<KeepaliveOptions> = {}, tls?: Endpoint["tls"]) {
  return new ConnectionPool({ hostname: "127.0.0.1", port, ...(tls ? { tls } : {}) }, connect, { ...keepalive, ...options });
}

describe("the upstream HTTP/1.1 client reads each framing", () => {
  const answers: [string, string, number, string][] = [
    ["a Content-Length body", "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: 1\r\n\r\nhello", 200, "hello"],
    [
      "a chunked body with extensions and trailers",
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6 ; x\r\n world\r\n0\r\nx-trailer: t\r\n\r\n",
      200,
      "hello world",
    ],
    ["a chunked body in upper-case hex", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n", 200, "0123456789"],
    [
      "a 1xx before the final response",
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok",
      201,
      "ok",
    ],
    ["a 204 without a body", "HTTP/1.1 204 No Content\r\n\r\n", 204, ""],
    ["a 304 with a Content-Length but no body", "HTTP/1.1 304 Not Modified\r\ncontent-length: 10\r\n\r\n", 304, ""],
    ["identical repeated Content-Lengths", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\nok", 200, "ok"],
  ];
  for (const [name, bytes, status, body] of answers) {
    it(`${name}, and keeps the connection`, async () => {
      const { port, stats } = rawServer((_h, s) => s.write(bytes));
      const pool = poolFor(port);
      for (let i = 0; i < 2; i++) {
        const response = await pool.request(get(), timeouts);
        expect(response.status).toBe(status);
        expect(await text(response)).toBe(body);
      }
      expect(stats.connections).toBe(1);
      pool.close();
    });
  }

  it("a body delimited by the connection's close, and opens a new connection for the next request", async () => {
    const { port, stats } = rawServer((_h, s) => {
      s.write("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end");
      s.end();
    });
    const pool = poolFor(port);
    for (let i = 0; i < 2; i++) expect(await text(await pool.request(get(), timeouts))).toBe("until the end");
    expect(stats.connections).toBe(2);
    pool.close();
  });

  it("a HEAD answer with a Content-Length and no body", async () => {
    const { port, stats } = rawServer((_h, s) => s.write("HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n"));
    const pool = poolFor(port);
    for (let i = 0; i < 2; i++) {
      const response = await pool.request({ ...get(), method: "HEAD" }, timeouts);
      expect(response.headers).toContainEqual(["content-length", "1234"]);
      expect(response.body).toBeNull();
    }
    expect(stats.connections).toBe(1);
    pool.close();
  });

  it("a body split across many small packets", async () => {
    const { port } = rawServer((_h, s) => {
      const bytes = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
      let i = 0;
      const next = () => {
        if (i < bytes.length) {
          s.write(bytes[i++]!);
          s.flush();
          setTimeout(next, 1);
        }
      };
      next();
    });
    const pool = poolFor(port);
    expect(await text(await pool.request(get(), timeouts))).toBe("abcdef");
    pool.close();
  });

  it("lower-cases field names however they are spelled and drops the whitespace around values", async () => {
    const { port } = rawServer((_h, s) =>
      s.write("HTTP/1.1 200 OK\r\nContent-Type:  text/plain \t\r\nX-Odd-Name:\tv a l\r\nDATE: d\r\ncontent-length: 0\r\n\r\n"),
    );
    const pool = poolFor(port);
    const response = await pool.request(get(), timeouts);
    expect(response.headers).toEqual([
      ["content-type", "text/plain"],
      ["x-odd-name", "v a l"],
      ["date", "d"],
      ["content-length", "0"],
    ]);
    pool.close();
  });

  it("drops hop-by-hop headers and those named in Connection", async () => {
    const { port } = rawServer((_h, s) =>
      s.write(
        "HTTP/1.1 200 OK\r\nconnection: x-secret, keep-alive\r\nkeep-alive: timeout=5\r\nx-secret: s\r\nx-kept: k\r\nset-cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 0\r\n\r\n",
      ),
    );
    const pool = poolFor(port);
    const response = await pool.request(get(), timeouts);
    expect(response.headers).toEqual([
      ["x-kept", "k"],
      ["set-cookie", "a=1"],
      ["set-cookie", "b=2"],
      ["content-length", "0"],
    ]);
    pool.close();
  });

  it("reads header values as ISO-8859-1: every byte from 0x80 up is the code point of the same number", async () => {
    const bytes = Buffer.from("HTTP/1.1 200 OK\r\nx-name: caf\xe9 \x80\x9f\xff\r\ncontent-length: 0\r\n\r\n", "latin1");
    const { port } = rawServer((_h, s) => s.write(bytes));
    const pool = poolFor(port);
    const response = await pool.request(get(), timeouts);
    expect(response.headers).toEqual([
      ["x-name", "caf\u00e9 \u0080\u009f\u00ff"],
      ["content-length", "0"],
    ]);
    pool.close();
  });
});

describe("the upstream HTTP/1.1 client refuses ambiguous answers with 502 and discards the connection", () => {
  const bad: [string, string][] = [
    [
      "Content-Length together with Transfer-Encoding",
      "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ],
    ["a Content-Length that is not a number", "HTTP/1.1 200 OK\r\ncontent-length: 3x\r\n\r\nabc"],
    ["conflicting Content-Lengths", "HTTP/1.1 200 OK\r\ncontent-length: 3, 4\r\n\r\nabcd"],
    ["a negative Content-Length", "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\nabc"],
    ["an obs-folded header", "HTTP/1.1 200 OK\r\nx-a: one\r\n  two\r\ncontent-length: 0\r\n\r\n"],
    ["a space before the colon", "HTTP/1.1 200 OK\r\ncontent-length : 0\r\n\r\n"],
    ["a bare LF in the head", "HTTP/1.1 200 OK\ncontent-length: 0\r\n\r\n"],
    ["a bare CR at the end of the head", "HTTP/1.1 200 OK\r\ncontent-length: 0\r\r\n\r\n"],
    ["a malformed status line", "HTTP/1.1 20 OK\r\ncontent-length: 0\r\n\r\n"],
    ["a transfer coding other than chunked", "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nabc"],
    ["a malformed chunk size", "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"],
    ["a header section over 64 KiB", `HTTP/1.1 200 OK\r\n${"x-big: ".concat("a".repeat(1000), "\r\n").repeat(70)}content-length: 0\r\n\r\n`],
    ["an unrequested 101", "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n"],
  ];
  for (const [name, bytes] of bad) {
    it(name, async () => {
      const { port, stats } = rawServer((_h, s) => s.write(bytes));
      const pool = poolFor(port);
      const outcome = await pool
        .request(get(), timeouts)
        .then((r) => text(r))
        .catch((e: unknown) => e);
      expect(outcome).toBeInstanceOf(UpstreamUnavailableError);
      expect(pool.idleCount).toBe(0);
      // the next request gets a fresh connection
      await pool.request(get(), timeouts).catch(() => undefined);
      expect(stats.connections).toBe(2);
      pool.close();
    });
  }

  it("an upstream that closes before the body it announced (small body: 502 before the response)", async () => {
    const { port } = rawServer((_h, s) => {
      s.write("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf");
      s.end();
    });
    const pool = poolFor(port);
    expect(await pool.request(get(), timeouts).catch((e: unknown) => e)).toBeInstanceOf(UpstreamUnavailableError);
    pool.close();
  });

  it("an upstream that closes mid-body (large body: the streamed body fails)", async () => {
    const { port } = rawServer((_h, s) => {
      s.write(`HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n${"x".repeat(200_000)}`);
      setTimeout(() => s.end(), 20);
    });
    const pool = poolFor(port);
    const response = await pool.request(get(), timeouts);
    expect(response.status).toBe(200);
    expect(await text(response).catch((e: unknown) => e)).toBeInstanceOf(UpstreamUnavailableError);
    pool.close();
  });
});

describe("the keep-alive pool", () => {
  it("retries once on a fresh connection when the upstream closed an idle pooled one", async () => {
    const { port, stats } = rawServer((_h, s, index) => {
      s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
      // The first connection is closed right after its answer, as an upstream's idle timeout would.
      if (index === 0) setTimeout(() => s.end(), 5);
    });
    const pool = poolFor(port);
    expect(await text(await pool.request(get(), timeouts))).toBe("ok");
    await Bun.sleep(30);
    expect(await text(await pool.request(get(), timeouts))).toBe("ok");
    expect(stats.connections).toBe(2);
    pool.close();
  });

  it("retries a reused connection that dies before answering, for a request without a body", async () => {
    let first = true;
    const { port, stats } = rawServer((_h, s, index) => {
      if (index === 1 && first) {
        first = false;
        s.terminate(); // the request reached a connection the upstream was closing
        return;
      }
      s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    });
    const pool = poolFor(port);
    expect(await text(await pool.request(get(), timeouts))).toBe("ok");
    expect(await text(await pool.request(get(), timeouts))).toBe("ok");
    expect(stats.connections).toBe(2);
    pool.close();
  });

  it("closes a connection after upstream_keepalive_max_requests", async () => {
    const { port, stats } = rawServer((_h, s) => s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
    const pool = poolFor(port, { maxRequests: 2 });
    for (let i = 0; i < 5; i++) await text(await pool.request(get(), timeouts));
    expect(stats.connections).toBe(3);
    pool.close();
  });

  it("keeps no connection with upstream_keepalive_pool_size = 0", async () => {
    const { port, stats } = rawServer((_h, s) => s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
    const pool = poolFor(port, { poolSize: 0 });
    for (let i = 0; i < 3; i++) await text(await pool.request(get(), timeouts));
    expect(stats.connections).toBe(3);
    pool.close();
  });

  it("closes idle connections after upstream_keepalive_idle_timeout", async () => {
    const { port, stats } = rawServer((_h, s) => s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
    const pool = poolFor(port, { idleTimeoutMs: 100 });
    await text(await pool.request(get(), timeouts));
    expect(pool.idleCount).toBe(1);
    await Bun.sleep(400);
    expect(pool.idleCount).toBe(0);
    await text(await pool.request(get(), timeouts));
    expect(stats.connections).toBe(2);
    pool.close();
  });

  it("does not reuse a connection after an HTTP/1.0 answer or Connection: close", async () => {
    const { port, stats } = rawServer((_h, s, i) =>
      s.write(i % 2 ? "HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok" : "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"),
    );
    const pool = poolFor(port);
    for (let i = 0; i < 2; i++) await text(await pool.request(get(), timeouts));
    expect(stats.connections).toBe(2);
    pool.close();
  });

  it("sends the Host, the headers, and Content-Length: 0 for a bodyless POST", async () => {
    const { port, stats } = rawServer((_h, s) => s.write("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
    const pool = poolFor(port);
    await pool.request({ ...get("/a?b=c"), method: "POST" }, timeouts);
    expect(stats.heads[0]).toBe("POST /a?b=c HTTP/1.1\r\nhost: upstream.test\r\naccept: */*\r\ncontent-length: 0");
    pool.close();
  });
});

describe("Kong's timeouts on the upstream connection", () => {
  it("fails at once, not after read_timeout, when a new connection closes before the request went out (a TLS 1.3 alert)", async () => {
    const { port } = rawServer(() => {});
    // What Deno's TLS client reports when the upstream refuses the client certificate after the handshake.
    const alerted: typeof connect = async (options, events) => {
      const socket = await connect(options, events);
      socket.destroy();
      events.close(new Error("received fatal alert: CertificateRequired"));
      return socket;
    };
    const pool = new ConnectionPool({ hostname: "127.0.0.1", port }, alerted, keepalive);
    const started = performance.now();
    const error = (await pool.request(get(), { ...timeouts, read: 5000 }).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect(error.message).toContain("CertificateRequired");
    expect(performance.now() - started).toBeLessThan(2000);
    pool.close();
  });

  it("read_timeout bounds the wait for the response headers after the request was sent", async () => {
    const { port } = rawServer(() => {});
    const pool = poolFor(port);
    const started = performance.now();
    expect(await pool.request(get(), { ...timeouts, read: 300 }).catch((e: unknown) => e)).toBeInstanceOf(UpstreamTimeoutError);
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(performance.now() - started).toBeLessThan(1500);
    pool.close();
  });

  it("read_timeout is the gap between two reads: a slow but steady body is not cut", async () => {
    const { port } = rawServer((_h, s) => {
      s.write("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n");
      let i = 0;
      const timer = setInterval(() => {
        s.write("x");
        if (++i === 5) clearInterval(timer);
      }, 150);
    });
    const pool = poolFor(port);
    expect(await text(await pool.request(get(), { ...timeouts, read: 400 }))).toBe("xxxxx");
    pool.close();
  });

  it("write_timeout bounds the gap between two writes of a request body", async () => {
    const { port } = rawServer(() => {});
    const pool = poolFor(port);
    const stalled = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(10));
      },
      pull() {
        return new Promise(() => {}); // the caller never sends the rest
      },
    });
    const started = performance.now();
    const outcome = await pool.request({ ...get(), method: "POST", body: stalled }, { ...timeouts, write: 300, read: 5000 }).catch((e: unknown) => e);
    expect(outcome).toBeInstanceOf(UpstreamTimeoutError);
    expect(performance.now() - started).toBeLessThan(2000);
    pool.close();
  });

  it("connect_timeout bounds a TLS handshake that never completes", async () => {
    const { port } = rawServer(() => {}); // accepts TCP, never speaks TLS
    const pool = poolFor(port, {}, { ca: [readFileSync("certs/ca.crt", "utf8")] });
    const started = performance.now();
    expect(await pool.request(get(), { ...timeouts, connect: 300 }).catch((e: unknown) => e)).toBeInstanceOf(UpstreamTimeoutError);
    expect(performance.now() - started).toBeLessThan(1500);
    pool.close();
  });
});

describe("TLS to the upstream", () => {
  it("verifies the certificate against trusted_certificates and reuses the connection", async () => {
    const { port, stats } = rawServer((_h, s) => s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"), true);
    const pool = new ConnectionPool({ hostname: "localhost", port, tls: { ca: [readFileSync("certs/ca.crt", "utf8")] } }, connect, keepalive);
    for (let i = 0; i < 2; i++) expect(await text(await pool.request(get(), timeouts))).toBe("ok");
    expect(stats.connections).toBe(1);
    pool.close();
  });

  it("refuses an upstream whose certificate it cannot verify (502)", async () => {
    const { port } = rawServer((_h, s) => s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"), true);
    const pool = poolFor(port, {}, {});
    expect(await pool.request(get(), timeouts).catch((e: unknown) => e)).toBeInstanceOf(UpstreamUnavailableError);
    pool.close();
  });

  it("refuses a certificate for another name than the SNI", async () => {
    const { port } = rawServer((_h, s) => s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"), true);
    const pool = poolFor(port, {}, { ca: [readFileSync("certs/ca.crt", "utf8")], serverName: "other.test" });
    expect(await pool.request(get(), timeouts).catch((e: unknown) => e)).toBeInstanceOf(UpstreamUnavailableError);
    pool.close();
  });
});

describe("large bodies stream both ways with bounded memory", () => {
  const MB = 1024 * 1024;

  it("uploads 100 MB as it arrives (chunked) and downloads 100 MB (Content-Length)", async () => {
    const total = 100 * MB;
    const listener = Bun.listen<{ head: boolean; buffer: string }>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          s.data = { head: false, buffer: "" };
        },
        data(s, data) {
          s.data.buffer = (s.data.buffer + new TextDecoder("latin1").decode(data.subarray(-5))).slice(-5);
          if (s.data.head || s.data.buffer !== "0\r\n\r\n") return;
          s.data.head = true;
          // The whole chunked upload arrived: answer with a 100 MB body written as the socket drains.
          s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${total}\r\n\r\n`);
          const chunk = new Uint8Array(256 * 1024).fill(121);
          let sent = 0;
          const pump = () => {
            while (sent < total) {
              const n = s.write(chunk.subarray(0, Math.min(chunk.length, total - sent)));
              sent += n;
              if (n < Math.min(chunk.length, total - sent + n)) return;
            }
          };
          (s as unknown as { pump: () => void }).pump = pump;
          pump();
        },
        drain(s) {
          (s as unknown as { pump?: () => void }).pump?.();
        },
      },
    });
    listeners.push(listener as TCPSocketListener<unknown>);
    const chunk = new Uint8Array(64 * 1024).fill(120);
    let uploaded = 0;
    const upload = new ReadableStream<Uint8Array>({
      pull(c) {
        if (uploaded >= total) return c.close();
        c.enqueue(chunk);
        uploaded += chunk.length;
      },
    });
    const pool = poolFor(listener.port);
    Bun.gc(true);
    const before = process.memoryUsage.rss();
    let peak = before;
    const response = await pool.request({ ...get(), method: "POST", body: upload }, timeouts);
    let downloaded = 0;
    for await (const part of response.body as ReadableStream<Uint8Array>) {
      downloaded += part.byteLength;
      // What the transfer keeps alive, not the garbage a busy process has not collected yet.
      if (downloaded % (8 * MB) < part.byteLength) {
        Bun.gc(true);
        peak = Math.max(peak, process.memoryUsage.rss());
      }
    }
    while (uploaded < total) await Bun.sleep(10);
    expect(downloaded).toBe(total);
    expect(uploaded).toBe(total);
    // Far below the 200 MB of both bodies (the margin is for the GC of a busy test process).
    expect(peak - before).toBeLessThan(120 * MB);
    pool.close();
  }, 60_000);

  it("stops reading from the upstream while the caller reads slowly", async () => {
    let written = 0;
    const total = 64 * MB;
    const listener = Bun.listen<undefined>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(s) {
          s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${total}\r\n\r\n`);
          const chunk = new Uint8Array(256 * 1024);
          const pump = () => {
            while (written < total) {
              const part = chunk.subarray(0, Math.min(chunk.length, total - written));
              const n = s.write(part);
              written += Math.max(n, 0);
              if (n < part.length) return;
            }
          };
          (s as unknown as { pump: () => void }).pump = pump;
          pump();
        },
        drain(s) {
          (s as unknown as { pump?: () => void }).pump?.();
        },
      },
    });
    listeners.push(listener as TCPSocketListener<unknown>);
    const pool = poolFor(listener.port);
    const response = await pool.request(get(), { ...timeouts, read: 300 });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const firstChunk = (await reader.read()).value!.byteLength;
    await Bun.sleep(600); // longer than read_timeout: a paused upstream is the caller's doing, not a timeout
    expect(written).toBeLessThan(total / 2);
    let got = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      got += value.byteLength;
    }
    expect(written).toBe(total);
    expect(got).toBe(total - firstChunk);
    pool.close();
  }, 60_000);
});
