/**
 * A listener built from `node:tls` + `node:http`, used where the peer certificate is needed
 * (mTLS). `Bun.serve` and `Deno.serve` do not expose it; a `node:tls` server that hands each
 * socket to a `node:http` server does, on Bun and on Deno alike.
 */
import { X509Certificate } from "node:crypto";
import * as http from "node:http";
import * as tls from "node:tls";
import { Readable } from "node:stream";
import { badRequest, isValidHost } from "./request-target.ts";
import type { ConnInfo, Listener, ListenOptions, PeerCertificate } from "./types.ts";

/** Split a PEM bundle into its certificates. */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/**
 * Checks the chain ourselves: Deno's socket reports `authorized: false` even for a good chain,
 * so neither runtime's flag is trusted. The leaf must be in its validity period and be issued
 * and signed by one of the CAs (directly, or through intermediates the client sent).
 */
export function verifyClientChain(chain: X509Certificate[], cas: X509Certificate[], now = new Date()): boolean {
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
  for (let c = leaf.issuerCertificate; c && chain.length < 6 && !chain.some((x) => x.fingerprint256 === c!.fingerprint256); c = c.issuerCertificate) chain.push(c);
  return { der: new Uint8Array(leaf.raw), subject: subjectDn(leaf), verified: verifyClientChain(chain, cas) };
}

const BODYLESS = new Set(["GET", "HEAD"]);

/**
 * The request URL from the request target and Host (RFC 9112 §3.2, §3.3): origin-form
 * (`/path?query`) with a valid single Host, or absolute-form, whose authority replaces Host.
 * Anything else (`*`, authority-form, a bad or repeated Host) is `undefined`: a 400.
 */
export function requestUrl(target: string, hosts: readonly string[]): { url: string; host: string | undefined } | undefined {
  if (hosts.length > 1 || !isValidHost(hosts[0] ?? null)) return undefined;
  if (target.startsWith("/")) return { url: `https://${hosts[0] ?? "localhost"}${target}`, host: hosts[0] };
  if (!/^https?:\/\//i.test(target)) return undefined;
  try {
    const u = new URL(target);
    if (u.username || u.password || !isValidHost(u.host)) return undefined;
    return { url: `https://${u.host}${u.pathname}${u.search}`, host: u.host };
  } catch {
    return undefined;
  }
}

function reply(res: http.ServerResponse, response: Response): void {
  res.writeHead(response.status, Object.fromEntries(response.headers));
  void response.text().then((body) => res.end(body));
}

export async function listenNode(options: ListenOptions): Promise<Listener> {
  const tlsFiles = options.tls;
  if (!tlsFiles) throw new Error("node listener is for TLS only");
  const cas = tlsFiles.clientCa ? splitPem(tlsFiles.clientCa).map((p) => new X509Certificate(p)) : [];
  const peers = new WeakMap<object, PeerCertificate | null>();

  const server = http.createServer(async (req, res) => {
    const socket = req.socket as tls.TLSSocket;
    // One certificate per connection: check the chain once, not on every keep-alive request.
    let cert = peers.get(socket);
    if (cert === undefined && cas.length) peers.set(socket, (cert = peerCertificate(socket, cas) ?? null));
    if (tlsFiles.requireClientCert && !cert?.verified) {
      res.writeHead(400, { "content-type": "application/json", connection: "close" });
      res.end('{"message":"a valid client certificate is required"}');
      return;
    }
    const conn: ConnInfo = { remoteAddress: socket.remoteAddress ?? "", localPort: port, tls: true, ...(cert ? { peerCertificate: cert } : {}) };
    const headers = new Headers();
    const hosts: string[] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      if (name.toLowerCase() === "host") hosts.push(req.rawHeaders[i + 1]!);
      headers.append(name, req.rawHeaders[i + 1]!);
    }
    // The URL is built from the request line, never from what a Host header could smuggle in.
    const target = requestUrl(req.url ?? "", hosts);
    if (!target) return reply(res, badRequest("invalid request target or Host header"));
    if (target.host !== undefined && hosts[0] !== target.host) headers.set("host", target.host);
    const controller = new AbortController();
    res.on("close", () => { if (!res.writableFinished) controller.abort(); });
    const init: RequestInit & { duplex?: "half" } = { method: req.method, headers, signal: controller.signal };
    if (!BODYLESS.has(req.method ?? "GET")) {
      init.body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
      init.duplex = "half";
    }
    let response: Response;
    try {
      response = await options.handler(new Request(target.url, init), conn);
    } catch {
      response = new Response('{"message":"An unexpected error occurred"}', { status: 500 });
    }
    const out: Record<string, string | string[]> = {};
    response.headers.forEach((v, k) => {
      if (k === "set-cookie") return;
      out[k] = v;
    });
    const cookies = response.headers.getSetCookie();
    if (cookies.length) out["set-cookie"] = cookies;
    res.writeHead(response.status, out);
    if (!response.body || req.method === "HEAD") { res.end(); return; }
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        if (!res.write(chunk)) await new Promise((r) => res.once("drain", r));
      }
      res.end();
    } catch {
      res.destroy();
    }
  });

  const tlsServer = tls.createServer(
    {
      cert: tlsFiles.cert,
      key: tlsFiles.key,
      requestCert: cas.length > 0,
      // The chain is checked by verifyClientChain, uniformly on Bun and Deno.
      rejectUnauthorized: false,
      ...(tlsFiles.clientCa ? { ca: tlsFiles.clientCa } : {}),
      ALPNProtocols: ["http/1.1"],
    },
    (socket) => server.emit("connection", socket),
  );
  await new Promise<void>((resolve, reject) => {
    tlsServer.once("error", reject);
    tlsServer.listen({ host: options.hostname, port: options.port, exclusive: !options.reusePort, reusePort: options.reusePort ?? false }, () => resolve());
  });
  const address = tlsServer.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return {
    hostname: options.hostname,
    port,
    async stop(graceMs: number) {
      tlsServer.close();
      server.close();
      const done = new Promise<void>((r) => server.once("close", () => r()));
      server.closeIdleConnections?.();
      const timer = new Promise<void>((r) => setTimeout(r, graceMs).unref?.());
      await Promise.race([done, timer]);
      server.closeAllConnections?.();
    },
  };
}
