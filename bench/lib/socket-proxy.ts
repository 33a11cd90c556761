/**
 * The floor for a proxy on this runtime without fetch(): `Bun.serve` in front, a pooled
 * `Bun.connect` HTTP/1.1 client behind, Content-Length bodies only, no logic (no routing, header
 * hygiene or timeouts). Reads gateway.toml like bench/lib/bare-proxy.ts.
 *   bun bench/bench.ts --quick --only 2,3,3s
 */
import { readFileSync } from "node:fs";
import type { Socket } from "bun";
import { parse } from "smol-toml";

const file = Bun.argv[Bun.argv.indexOf("--config") + 1]!;
const config = parse(readFileSync(file, "utf8")) as { server: { proxy_listen: string; admin_listen: string }; services: { url: string }[] };
const [host, port] = config.server.proxy_listen.split(":") as [string, string];
const [adminHost, adminPort] = config.server.admin_listen.split(":") as [string, string];
const origin = new URL(config.services[0]!.url);

interface Conn {
  socket?: Socket<Conn>;
  buf?: Buffer;
  pending?: Buffer; // request bytes the kernel did not take yet
  done?: (res: Response) => void;
}
const idle: Conn[] = [];
const SKIP = new Set(["connection", "keep-alive", "transfer-encoding", "content-length", "host"]);

function fail(c: Conn) {
  const i = idle.indexOf(c);
  if (i >= 0) idle.splice(i, 1);
  c.done?.(new Response("bad gateway", { status: 502 }));
  c.done = undefined;
}

function onData(c: Conn, chunk: Buffer) {
  const buf = (c.buf = c.buf ? Buffer.concat([c.buf, chunk]) : Buffer.from(chunk));
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return;
  const lines = buf.toString("latin1", 0, end).split("\r\n");
  const headers = new Headers();
  let length = 0;
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i]!.indexOf(":");
    const name = lines[i]!.slice(0, colon).trim().toLowerCase();
    const value = lines[i]!.slice(colon + 1).trim();
    if (name === "content-length") length = Number(value);
    if (!SKIP.has(name)) headers.append(name, value);
  }
  if (buf.length < end + 4 + length) return;
  const body = buf.subarray(end + 4, end + 4 + length);
  const done = c.done!;
  c.buf = c.done = undefined;
  idle.push(c);
  done(new Response(body, { status: Number(lines[0]!.slice(9, 12)), headers }));
}

function write(c: Conn, bytes: Buffer) {
  const n = c.socket!.write(bytes);
  c.pending = n < bytes.length ? bytes.subarray(Math.max(n, 0)) : undefined;
}

const connect = (): Promise<Conn> =>
  Bun.connect<Conn>({
    hostname: origin.hostname,
    port: Number(origin.port || 80),
    data: {},
    socket: {
      data: (s, chunk) => onData(s.data, chunk),
      drain: (s) => s.data.pending && write(s.data, s.data.pending),
      close: (s) => fail(s.data),
      error: (s) => fail(s.data),
    },
  }).then((socket) => {
    socket.data.socket = socket;
    return socket.data;
  });

Bun.serve({
  hostname: host,
  port: Number(port),
  async fetch(req) {
    const url = req.url;
    const body = req.body ? Buffer.from(await req.arrayBuffer()) : undefined;
    let head = `${req.method} ${url.slice(url.indexOf("/", 8))} HTTP/1.1\r\nhost: ${origin.host}\r\n`;
    for (const [k, v] of req.headers) if (!SKIP.has(k)) head += `${k}: ${v}\r\n`;
    head += body ? `content-length: ${body.length}\r\n\r\n` : "\r\n";
    const c = idle.pop() ?? (await connect());
    return new Promise<Response>((resolve) => {
      c.done = resolve;
      write(c, body ? Buffer.concat([Buffer.from(head, "latin1"), body]) : Buffer.from(head, "latin1"));
    });
  },
});
Bun.serve({ hostname: adminHost, port: Number(adminPort), fetch: () => Response.json({ status: "ok" }) });
