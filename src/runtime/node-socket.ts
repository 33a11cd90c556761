/**
 * Raw upstream TLS connections through `node:tls`, on Bun and on Deno alike, for a service with
 * `tls_verify_depth`: only node:tls hands over the verified chain (`getPeerCertificate(true)`),
 * so only here can its length be checked. Bun.connect and Deno.connectTls stay the default.
 */
import type * as tls from "node:tls";
import { nodeTls } from "./builtins.ts";
import { ConnectError } from "./connect-error.ts";
import { withSystemRoots } from "./system-roots.ts";
import type { ConnectOptions, RawSocket, SocketEvents } from "./types.ts";

class NodeSocket implements RawSocket {
  events: SocketEvents;
  closed = false;

  constructor(
    private readonly socket: tls.TLSSocket,
    events: SocketEvents,
  ) {
    this.events = events;
    socket.on("data", (chunk: Uint8Array) => {
      if (!this.closed) this.events.data(chunk);
    });
    socket.on("drain", () => {
      if (!this.closed) this.events.drain();
    });
    socket.on("close", () => this.ended());
    socket.on("error", (error) => this.ended(error));
  }

  write(data: Uint8Array | string): boolean {
    if (this.closed) return false;
    return typeof data === "string" ? this.socket.write(data, "latin1") : this.socket.write(data);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
  }

  private ended(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.events.close(error);
  }
}

/**
 * CA certificates between the leaf and the trust anchor on the verified chain (OpenSSL's verify
 * depth counts these: depth 1 allows a leaf, one intermediate and the root).
 */
function intermediates(socket: tls.TLSSocket): number {
  const seen = new Set<string>();
  let length = 0;
  for (let c: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true); c?.fingerprint256 && !seen.has(c.fingerprint256); ) {
    seen.add(c.fingerprint256);
    length++;
    c = c.issuerCertificate;
  }
  return Math.max(0, length - 2);
}

const IP = /^[\d.]+$|:/;

export function connectNode(options: ConnectOptions, events: SocketEvents): Promise<RawSocket> {
  const { hostname, port } = options;
  const settings = options.tls ?? {};
  const serverName = settings.serverName ?? (IP.test(hostname) ? undefined : hostname);
  return new Promise<RawSocket>((resolve, reject) => {
    let settled = false;
    const socket = nodeTls().connect({
      host: hostname,
      port,
      ...(serverName ? { servername: serverName } : {}),
      // node:tls replaces its roots when `ca` is given: the system roots are added back.
      ...(settings.ca?.length ? { ca: withSystemRoots(settings.ca) } : {}),
      ...(settings.cert ? { cert: settings.cert, key: settings.key } : {}),
      rejectUnauthorized: settings.verify !== false,
      ALPNProtocols: ["http/1.1"],
    });
    const fail = (error: ConnectError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(
      () => fail(new ConnectError("timeout", `connecting to ${hostname}:${port} took longer than ${options.timeoutMs} ms`)),
      options.timeoutMs,
    );
    socket.once("secureConnect", () => {
      const depth = settings.verifyDepth;
      if (settings.verify !== false && depth !== undefined) {
        const found = intermediates(socket);
        if (found > depth)
          return fail(
            new ConnectError(
              "tls",
              `TLS handshake with ${hostname}:${port} failed: the certificate chain has ${found} intermediate certificates, tls_verify_depth allows ${depth}`,
            ),
          );
      }
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.setNoDelay(true);
      socket.removeListener("error", onError);
      resolve(new NodeSocket(socket, events));
    });
    const onError = (error: NodeJS.ErrnoException) => {
      const refused = error.code === "ECONNREFUSED" || error.code === "EHOSTUNREACH" || error.code === "ENOTFOUND";
      fail(
        new ConnectError(
          refused ? "refused" : "tls",
          `${refused ? "cannot connect to" : "TLS handshake with"} ${hostname}:${port} failed: ${error.message}`,
          { cause: error },
        ),
      );
    };
    socket.on("error", onError);
    socket.once("close", () => fail(new ConnectError("tls", `${hostname}:${port} closed the connection while connecting`)));
  });
}
