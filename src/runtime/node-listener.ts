/**
 * A listener built from `node:http`: behind `node:tls` where the peer certificate is needed
 * (mTLS; `Bun.serve` and `Deno.serve` do not expose it), and for every listener on Deno, because
 * `Deno.serve` bounds no wait and caps no connections (docs/security.md). Every connection is
 * tracked here: header and keep-alive timers, `max_connections`, shutdown.
 */
import type { X509Certificate } from "node:crypto";
import type * as http from "node:http";
import type * as tls from "node:tls";
import { nodeCrypto, nodeHttp, nodeHttps, nodeStream, nodeTls } from "./builtins.ts";
import type * as net from "node:net";
import { handshakeKey, NODE_UPGRADED, nodeUpgrade } from "./node-websocket.ts";
import { handlerFailed } from "./handler-failure.ts";
import { absoluteAuthority, badRequest, edgeRefusal, isValidHost } from "./request-target.ts";
import {
  DEFAULT_LIMITS,
  type ConnInfo,
  type Listener,
  type ListenerLimits,
  type ListenOptions,
  type PeerCertificate,
  type SniCertificate,
} from "./types.ts";
import { wantsWebSocket } from "./websocket-edge.ts";

/** `[[certificates]]` by server name: an exact name first, then a `*.` wildcard for its first label. */
function sniCallback(
  certificates: readonly SniCertificate[],
): (servername: string, cb: (error: Error | null, ctx?: tls.SecureContext) => void) => void {
  const contexts = new Map<string, tls.SecureContext>();
  for (const c of certificates) {
    const context = nodeTls().createSecureContext({ cert: c.cert, key: c.key });
    for (const sni of c.snis) contexts.set(sni, context);
  }
  return (servername, cb) => {
    const name = servername.toLowerCase();
    const dot = name.indexOf(".");
    cb(null, contexts.get(name) ?? (dot > 0 ? contexts.get(`*${name.slice(dot)}`) : undefined));
  };
}

/** Split a PEM bundle into its certificates. */
function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * Checks the chain ourselves: Deno's socket reports `authorized: false` even for a good chain,
 * so neither runtime's flag is trusted. The leaf must be in its validity period and be issued
 * and signed by one of the CAs (directly, or through intermediates the client sent).
 */
function verifyClientChain(chain: X509Certificate[], cas: X509Certificate[], now = new Date()): boolean {
  const leaf = chain[0];
  if (!leaf) return false;
  const valid = (c: X509Certificate) => new Date(c.validFrom) <= now && now <= new Date(c.validTo);
  let current = leaf;
  for (let depth = 0; depth < 5; depth++) {
    if (!valid(current)) return false;
    const ca = cas.find((c) => current.checkIssued(c) && current.verify(c.publicKey));
    if (ca) return valid(ca);
    const next = chain.find((c) => c !== current && c.ca && current.checkIssued(c) && current.verify(c.publicKey));
    if (!next) return false;
    current = next;
  }
  return false;
}

/** RFC 4514 order: most specific first (`CN=JohnDoe,OU=IT`). */
function subjectDn(cert: X509Certificate): string {
  return cert.subject.split("\n").filter(Boolean).reverse().join(",");
}

function peerCertificate(socket: tls.TLSSocket, cas: X509Certificate[]): PeerCertificate | undefined {
  const leaf = socket.getPeerX509Certificate?.();
  if (!leaf) return undefined;
  const chain: X509Certificate[] = [leaf];
  for (let c = leaf.issuerCertificate; c && chain.length < 6 && !chain.some((x) => x.fingerprint256 === c!.fingerprint256); c = c.issuerCertificate)
    chain.push(c);
  return { der: new Uint8Array(leaf.raw), subject: subjectDn(leaf), verified: verifyClientChain(chain, cas) };
}

const BODYLESS = new Set(["GET", "HEAD"]);

/**
 * The request URL from the request target and Host (RFC 9112 §3.2, §3.3): origin-form
 * (`/path?query`) with a valid single Host, or absolute-form, whose authority replaces Host.
 * Anything else (`*`, authority-form, userinfo, a bad, missing or repeated Host) is `undefined`: a 400.
 */
function requestUrl(target: string, hosts: readonly string[], scheme: string): { url: string; host: string } | undefined {
  if (hosts.length > 1) return undefined;
  const authority = absoluteAuthority(target);
  if (authority === undefined) return undefined;
  const host = authority ?? hosts[0];
  if (!isValidHost(host)) return undefined;
  const path = authority === null ? target : target.slice(target.indexOf(authority) + authority.length) || "/";
  if (!path.startsWith("/") && !path.startsWith("?")) return undefined;
  try {
    const u = new URL(`${scheme}${host}${path.startsWith("?") ? "/" + path : path}`);
    return { url: u.href, host };
  } catch {
    return undefined;
  }
}

/** What the node:http request line and headers carry that the runtimes' own parsers refuse. */
function protocolRefusal(req: http.IncomingMessage): Response | undefined {
  if (req.httpVersionMajor !== 1 || (req.httpVersionMinor !== 0 && req.httpVersionMinor !== 1)) {
    return req.httpVersionMajor > 1
      ? new Response('{"message":"HTTP version not supported"}', {
          status: 505,
          headers: { "content-type": "application/json; charset=utf-8", connection: "close" },
        })
      : badRequest("invalid request line");
  }
  // RFC 9112 §6.1: Transfer-Encoding on HTTP/1.0 is a framing fault (and a smuggling vector).
  if (req.httpVersionMinor === 0 && req.headers["transfer-encoding"] !== undefined) return badRequest("Transfer-Encoding on HTTP/1.0");
  return undefined;
}

/**
 * An answer written straight on a socket node:http gave up (after an `upgrade` event); the
 * connection closes after it. The body streams, chunked (HTTP/1.0: until the close), as on the
 * request path: a request merely carrying `Upgrade` may be answered with a large or endless body.
 */
async function writeRaw(socket: net.Socket, response: Response, head: boolean, http10: boolean, sendTimeout: number): Promise<void> {
  const body = head || response.status === 204 || response.status === 304 ? null : response.body;
  if (body !== response.body) void response.body?.cancel().catch(() => {});
  let text = `HTTP/1.1 ${response.status} ${nodeHttp().STATUS_CODES[response.status] ?? ""}\r\n`;
  response.headers.forEach((value, name) => {
    if (name !== "set-cookie" && name !== "content-length" && name !== "connection" && name !== "transfer-encoding") text += `${name}: ${value}\r\n`;
  });
  for (const cookie of response.headers.getSetCookie()) text += `set-cookie: ${cookie}\r\n`;
  const chunked = body !== null && !http10;
  text += `${body === null ? "content-length: 0\r\n" : chunked ? "transfer-encoding: chunked\r\n" : ""}connection: close\r\n\r\n`;
  if (socket.destroyed) {
    void body?.cancel().catch(() => {});
    return;
  }
  socket.write(text, "latin1");
  if (body) {
    const reader = body.getReader();
    let wake: (() => void) | undefined;
    const gone = () => {
      void reader.cancel().catch(() => {});
      wake?.();
    };
    socket.once("close", gone);
    try {
      for (let read = await reader.read(); !read.done && !socket.destroyed; read = await reader.read()) {
        // An empty chunk would end a chunked body; every part is written, the last says whether the buffer is full.
        if (!read.value.byteLength) continue;
        if (chunked) socket.write(`${read.value.byteLength.toString(16)}\r\n`, "latin1");
        let more = socket.write(read.value);
        if (chunked) more = socket.write("\r\n", "latin1");
        if (!more) await drainedWithin(socket, sendTimeout, (w) => (wake = w));
      }
      if (chunked && !socket.destroyed) socket.write("0\r\n\r\n", "latin1");
    } catch {
      // The body failed: no last chunk, so the caller sees the answer cut short.
      socket.destroy();
      return;
    } finally {
      socket.off("close", gone);
    }
  }
  socket.end();
}

/**
 * Resolves once `out` drains. A caller that takes nothing more within `ms` is let go (`out`
 * destroyed, whose close then wakes the wait through `onWait`'s function), as Bun.serve's
 * idleTimeout does: a response never waits for a caller that stopped reading for good.
 */
function drainedWithin(out: net.Socket | http.ServerResponse, ms: number, onWait: (wake: () => void) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = ms > 0 ? setTimeout(() => out.destroy(), ms) : undefined;
    const wake = () => {
      clearTimeout(timer);
      resolve();
    };
    onWait(wake);
    out.once("drain", wake);
  });
}

function reply(res: http.ServerResponse, response: Response): void {
  res.writeHead(response.status, Object.fromEntries(response.headers));
  void response.text().then((body) => res.end(body));
}

/** One TLS connection's request state, for the header and keep-alive timers and shutdown. */
interface Connection {
  readonly socket: net.Socket;
  inFlight: number;
  /** Waiting for the rest of a request's headers (true) or idle between requests (false). */
  reading: boolean;
  timer?: ReturnType<typeof setTimeout>;
  /** The request whose body is still arriving, and when bytes last came (`performance.now()`). */
  body?: http.IncomingMessage | undefined;
  lastData: number;
}

/**
 * `nativeHttps`: TLS connections are parsed by an `https.Server` itself rather than handed from
 * a `tls.Server` to an `http.Server`: Deno's node:http serves only one request on a handed-over
 * socket, and Bun's https.Server does not expose the peer certificate.
 */
export async function listenNode(options: ListenOptions, nativeHttps = false): Promise<Listener> {
  const tlsFiles = options.tls;
  const scheme = tlsFiles ? "https://" : "http://";
  const limits: ListenerLimits = options.limits ?? DEFAULT_LIMITS;
  const cas = tlsFiles?.clientCa ? splitPem(tlsFiles.clientCa).map((p) => new (nodeCrypto().X509Certificate)(p)) : [];
  const peers = new WeakMap<object, PeerCertificate | null>();
  /** Accepted TCP sockets (TLS or not yet), for `max_connections` and shutdown. */
  const sockets = new Set<net.Socket>();
  /** Sockets still in their TLS handshake, by peer address, with their deadline. */
  const handshaking = new Map<string, { raw: net.Socket; timer?: ReturnType<typeof setTimeout> }>();
  const connections = new Map<net.Socket, Connection>();
  let stopping = false;
  let allClosed: (() => void) | undefined;

  const arm = (c: Connection, ms: number) => {
    clearTimeout(c.timer);
    c.timer = ms > 0 ? setTimeout(() => c.socket.destroy(), ms) : undefined;
    c.timer?.unref?.();
  };
  /**
   * A request body still arriving: `client_header_timeout` bounds each wait for more of it (nginx's
   * client_body_timeout), as Bun.serve's idleTimeout bounds it there; a plugin reading the body
   * would otherwise wait for a stalled caller for good.
   */
  const waitBody = (c: Connection, req: http.IncomingMessage) => {
    const limit = limits.clientHeaderTimeout;
    if (limit <= 0) return;
    c.body = req;
    c.lastData = performance.now();
    const check = () => {
      if (c.body !== req) return;
      const quiet = performance.now() - c.lastData;
      if (req.complete) c.body = undefined;
      else if (quiet >= limit - 1) c.socket.destroy();
      else (c.timer = setTimeout(check, limit - quiet)).unref?.();
    };
    (c.timer = setTimeout(check, limit)).unref?.();
  };
  /** No request on the connection: nginx's keep-alive wait (or an immediate close when stopping). */
  const idle = (c: Connection) => {
    c.reading = false;
    if (stopping || limits.keepaliveTimeout === 0) {
      clearTimeout(c.timer);
      c.socket.end();
      setTimeout(() => c.socket.destroy(), 1000).unref?.();
      return;
    }
    arm(c, limits.keepaliveTimeout);
  };

  /**
   * What both the request and the upgrade paths start with: the edge's refusals, the client
   * certificate, the connection's facts and the URL from the request line. A Response is a refusal.
   */
  const prepare = (req: http.IncomingMessage): Response | { conn: ConnInfo; headers: Headers; url: string } => {
    const socket = req.socket;
    const headers = new Headers();
    const hosts: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      if (name.toLowerCase() === "host") hosts.push(req.rawHeaders[i + 1]!);
      headers.append(name, req.rawHeaders[i + 1]!);
    }
    const refused = protocolRefusal(req) ?? edgeRefusal(req.method ?? "", headers);
    if (refused) return refused;
    // One certificate per connection: check the chain once, not on every keep-alive request.
    let cert = peers.get(socket);
    if (cert === undefined && cas.length) peers.set(socket, (cert = peerCertificate(socket as tls.TLSSocket, cas) ?? null));
    if (tlsFiles?.requireClientCert && !cert?.verified) {
      return new Response('{"message":"a valid client certificate is required"}', {
        status: 400,
        headers: { "content-type": "application/json", connection: "close" },
      });
    }
    const servername = (socket as { servername?: string | false }).servername;
    const conn: ConnInfo = {
      remoteAddress: socket.remoteAddress ?? "",
      remotePort: socket.remotePort,
      localAddress: socket.localAddress,
      ...(servername ? { serverName: servername } : {}),
      localPort: port,
      tls: !!tlsFiles,
      ...(cert ? { peerCertificate: cert } : {}),
    };
    // The URL is built from the request line, never from what a Host header could smuggle in.
    const target = requestUrl(req.url ?? "", hosts, scheme);
    if (!target) return badRequest("invalid request target or Host header");
    if (hosts[0] !== target.host) headers.set("host", target.host);
    return { conn, headers, url: target.url };
  };

  const onRequest = async (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket;
    const state = connections.get(socket);
    if (state) {
      state.inFlight++;
      clearTimeout(state.timer);
      res.once("close", () => {
        if (state.body === req) state.body = undefined;
        if (--state.inFlight === 0) idle(state);
      });
      const declared = req.headers["content-length"];
      if (!req.complete && ((declared !== undefined && declared !== "0") || req.headers["transfer-encoding"] !== undefined)) waitBody(state, req);
    }
    if (stopping || limits.keepaliveTimeout === 0) res.setHeader("connection", "close");
    const prepared = prepare(req);
    if (prepared instanceof Response) return reply(res, prepared);
    const { conn, headers } = prepared;
    const controller = new AbortController();
    let body: ReadableStreamDefaultReader<Uint8Array> | undefined;
    let wake: (() => void) | undefined;
    // A caller gone before the end: the response body is cancelled (as Bun.serve and Deno.serve do),
    // which ends the upstream exchange, and a wait for `drain` that would never come is woken.
    res.on("close", () => {
      if (res.writableFinished) return;
      controller.abort();
      void body?.cancel().catch(() => {});
      wake?.();
    });
    const init: RequestInit & { duplex?: "half" } = { method: req.method, headers, signal: controller.signal };
    if (!BODYLESS.has(req.method ?? "GET")) {
      init.body = nodeStream().Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
      init.duplex = "half";
    }
    const request = new Request(prepared.url, init);
    let response: Response;
    try {
      response = await options.handler(request, conn);
    } catch (error) {
      response = handlerFailed(options, error, request);
    }
    const out: Record<string, string | string[]> = {};
    response.headers.forEach((v, k) => {
      if (k === "set-cookie") return;
      out[k] = v;
    });
    const cookies = response.headers.getSetCookie();
    if (cookies.length) out["set-cookie"] = cookies;
    // An answer before the request body was read whole (a refusal) ends the connection: the
    // unread rest would otherwise be taken for the next request, or stall it on Deno.
    if (stopping || !req.complete) out.connection = "close";
    res.writeHead(response.status, out);
    if (!response.body || req.method === "HEAD") {
      res.end();
      return;
    }
    body = response.body.getReader();
    if (res.destroyed) void body.cancel().catch(() => {});
    try {
      for (let read = await body.read(); !read.done && !res.destroyed; read = await body.read()) {
        if (!res.write(read.value)) await drainedWithin(res, limits.clientHeaderTimeout, (w) => (wake = w));
      }
      if (!res.destroyed) res.end();
    } catch {
      res.destroy();
    }
  };
  const secureOptions: tls.TlsOptions | undefined = tlsFiles && {
    cert: tlsFiles.cert,
    key: tlsFiles.key,
    requestCert: cas.length > 0,
    // The chain is checked by verifyClientChain, uniformly on Bun and Deno.
    rejectUnauthorized: false,
    ...(tlsFiles.clientCa ? { ca: tlsFiles.clientCa } : {}),
    ALPNProtocols: ["http/1.1"],
    ...(limits.tlsHandshakeTimeout > 0 ? { handshakeTimeout: limits.tlsHandshakeTimeout } : {}),
    ...(tlsFiles.certificates?.length ? { SNICallback: sniCallback(tlsFiles.certificates) } : {}),
  };
  // Only a WebSocket handshake leaves node:http's parser for the `upgrade` event: any other request
  // carrying Upgrade is read as every request is (its body forwarded, its waits bounded), as Bun.serve does.
  const shouldUpgradeCallback = (req: http.IncomingMessage) => req.headers.upgrade?.toLowerCase() === "websocket";
  const direct = secureOptions !== undefined && nativeHttps;
  const server: http.Server = direct
    ? nodeHttps().createServer({ ...secureOptions, shouldUpgradeCallback }, onRequest)
    : nodeHttp().createServer({ shouldUpgradeCallback }, onRequest);
  // What node:http's own parser refuses (two Content-Length headers, bad framing) gets the same
  // JSON 400 as the edge checks, written by us: Deno's node:http sometimes closed with no answer.
  server.on("clientError", (error: NodeJS.ErrnoException, socket: net.Socket) => {
    if (!socket.writable || (socket as { _httpMessage?: unknown })._httpMessage) return void socket.destroy();
    const [status, text] = error.code === "HPE_HEADER_OVERFLOW" ? [431, "Request Header Fields Too Large"] : [400, "Bad Request"];
    const body = JSON.stringify({ message: status === 431 ? "request headers too large" : "malformed request" });
    socket.end(
      `HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  // A WebSocket handshake (`shouldUpgradeCallback`) comes here with the raw socket instead of to
  // the request handler, and runs the same pipeline with `conn.upgrade`; any other answer is
  // written on the socket, which then closes (the connection cannot carry another request).
  server.on("upgrade", async (req: http.IncomingMessage, socket: net.Socket, head: Uint8Array) => {
    const state = connections.get(socket);
    if (state) {
      state.inFlight++;
      clearTimeout(state.timer);
    }
    let upgraded = false;
    const done = () => {
      if (state && --state.inFlight === 0) idle(state);
    };
    const answer = (response: Response) =>
      void writeRaw(socket, response, req.method === "HEAD", req.httpVersionMinor === 0, limits.clientHeaderTimeout).finally(done);
    const prepared = prepare(req);
    if (prepared instanceof Response) return answer(prepared);
    const key = wantsWebSocket(prepared.headers) ? handshakeKey(req.method, prepared.headers) : undefined;
    if (wantsWebSocket(prepared.headers) && !key) return answer(badRequest("invalid WebSocket handshake"));
    const conn: ConnInfo = key
      ? {
          ...prepared.conn,
          upgrade: (session, opts) => {
            upgraded = true;
            return nodeUpgrade(socket, key, head, done)(session, opts);
          },
        }
      : prepared.conn;
    const request = new Request(prepared.url, { method: req.method, headers: prepared.headers });
    let response: Response;
    try {
      response = await options.handler(request, conn);
    } catch (error) {
      response = handlerFailed(options, error, request);
    }
    if (upgraded && response === NODE_UPGRADED) return;
    answer(response);
  });
  // CONNECT never reaches the request handler: answered here as nginx does.
  server.on("connect", (_req: http.IncomingMessage, socket: net.Socket) => {
    socket.end(
      'HTTP/1.1 405 Method Not Allowed\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: 32\r\nconnection: close\r\n\r\n{"message":"Method not allowed"}',
    );
  });
  // Our own timers bound every wait (below); node:http's are kept in line with them. Its
  // keep-alive timer stays off: ours closes idle connections, and node:http would add a
  // `Keep-Alive: timeout=…` header to every response, which Bun.serve does not send.
  server.keepAliveTimeout = 0;
  server.headersTimeout = limits.clientHeaderTimeout;
  server.requestTimeout = 0;

  /** A connection ready for HTTP (after TLS, if any): its header timer starts now. */
  const track = (socket: net.Socket) => {
    const c: Connection = { socket, inFlight: 0, reading: true, lastData: 0 };
    connections.set(socket, c);
    arm(c, limits.clientHeaderTimeout);
    // Bytes on an idle connection start the next request: from now on its headers are timed.
    socket.on("data", () => {
      if (c.body !== undefined) c.lastData = performance.now();
      else if (c.inFlight === 0 && !c.reading) {
        c.reading = true;
        arm(c, limits.clientHeaderTimeout);
      }
    });
    socket.on("close", () => {
      clearTimeout(c.timer);
      connections.delete(socket);
    });
    socket.on("error", () => socket.destroy());
  };
  /** Every accepted TCP socket, before TLS: the connection cap; false when refused. */
  const accept = (raw: net.Socket): boolean => {
    if (stopping || sockets.size >= limits.maxConnections) {
      raw.destroy();
      return false;
    }
    sockets.add(raw);
    raw.on("error", () => raw.destroy());
    raw.on("close", () => {
      sockets.delete(raw);
      if (sockets.size === 0) allClosed?.();
    });
    return true;
  };
  /** Before TLS: the connection cap and the handshake deadline (a peer that never says hello). */
  const handshake = (raw: net.Socket) => {
    if (!accept(raw)) return;
    const key = `${raw.remoteAddress}:${raw.remotePort}`;
    const timer = limits.tlsHandshakeTimeout > 0 ? setTimeout(() => raw.destroy(), limits.tlsHandshakeTimeout) : undefined;
    timer?.unref?.();
    handshaking.set(key, { raw, timer });
    raw.on("close", () => {
      clearTimeout(timer);
      if (handshaking.get(key)?.raw === raw) handshaking.delete(key);
    });
  };
  /** A TLS connection whose handshake is done: off the handshake clock, on the header clock. */
  const secured = (socket: tls.TLSSocket): boolean => {
    const key = `${socket.remoteAddress}:${socket.remotePort}`;
    clearTimeout(handshaking.get(key)?.timer);
    handshaking.delete(key);
    if (stopping) {
      socket.destroy();
      return false;
    }
    track(socket);
    return true;
  };

  let outer: net.Server = server;
  if (!secureOptions) {
    // node:http's own connection listener runs first; a refused socket is destroyed before it is read.
    server.on("connection", (socket: net.Socket) => {
      if (accept(socket)) track(socket);
    });
  } else if (direct) {
    server.on("connection", handshake);
    server.on("secureConnection", secured);
    server.on("tlsClientError", (_error: Error, socket: net.Socket) => socket.destroy());
  } else {
    const secure = nodeTls().createServer(secureOptions, (socket) => {
      if (secured(socket)) server.emit("connection", socket);
    });
    secure.on("connection", handshake);
    secure.on("tlsClientError", (_error, socket) => socket.destroy());
    outer = secure;
  }
  await new Promise<void>((resolve, reject) => {
    outer.once("error", reject);
    outer.listen({ host: options.hostname, port: options.port, exclusive: !options.reusePort, reusePort: options.reusePort ?? false }, () =>
      resolve(),
    );
  });
  const address = outer.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return {
    hostname: options.hostname,
    port,
    async stop(graceMs: number) {
      stopping = true;
      outer.close();
      // Idle and half-open connections go now; those with a request in flight after its response.
      for (const c of connections.values()) if (c.inFlight === 0) c.socket.destroy();
      for (const { raw } of handshaking.values()) raw.destroy();
      if (sockets.size > 0) {
        const done = new Promise<void>((r) => (allClosed = r));
        const timer = new Promise<void>((r) => setTimeout(r, graceMs).unref?.());
        await Promise.race([done, timer]);
      }
      for (const raw of sockets) raw.destroy();
      for (const c of connections.values()) c.socket.destroy();
    },
  };
}
