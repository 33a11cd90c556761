/**
 * A small forward proxy for the suites: CONNECT tunnels (https targets) and absolute-form
 * requests (http targets), on loopback, counting what it carried and checking
 * Proxy-Authorization when given credentials.
 */
import { createServer, request, type IncomingMessage, type Server } from "node:http";
import { connect, type Socket } from "node:net";

export interface ForwardProxy {
  readonly port: number;
  readonly url: string;
  /** `host:port` of each CONNECT, in order. */
  readonly connects: string[];
  /** Each absolute-form request URL, in order. */
  readonly requests: string[];
  /** Requests refused for missing or wrong credentials. */
  readonly refused: number;
  stop(): Promise<void>;
}

export async function startForwardProxy(credentials?: { user: string; password: string }): Promise<ForwardProxy> {
  const connects: string[] = [];
  const requests: string[] = [];
  let refused = 0;
  const expected = credentials ? `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString("base64")}` : undefined;
  const allowed = (req: IncomingMessage) => !expected || req.headers["proxy-authorization"] === expected;
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    if (!allowed(req)) {
      refused++;
      res.writeHead(407, { "proxy-authenticate": 'Basic realm="test"' }).end();
      return;
    }
    requests.push(req.url ?? "");
    const target = new URL(req.url ?? "");
    const headers = { ...req.headers };
    delete headers["proxy-authorization"];
    delete headers["proxy-connection"];
    const upstream = request(
      { host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on("error", () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("connect", (req: IncomingMessage, client: Socket, head: Buffer) => {
    if (!allowed(req)) {
      refused++;
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\n\r\n');
      return;
    }
    connects.push(req.url ?? "");
    const [host, port] = (req.url ?? "").split(":");
    const upstream = connect(Number(port), host!, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on("close", () => sockets.delete(upstream));
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connects,
    requests,
    get refused() {
      return refused;
    },
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
