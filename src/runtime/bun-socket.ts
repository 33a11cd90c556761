/**
 * Raw upstream connections on Bun (`Bun.connect`): the transport of the gateway's HTTP/1.1
 * client. Bun's `write` takes what the kernel accepts; the rest waits here until `drain`.
 */
import type { Socket, SocketHandler } from "bun";
import { withSystemRoots } from "./system-roots.ts";
import { ConnectError } from "./connect-error.ts";
import type { ConnectOptions, RawSocket, SocketEvents, SocketTls } from "./types.ts";

const encoder = new TextEncoder();

class BunSocket implements RawSocket {
  events: SocketEvents;
  closed = false;
  /** Bytes the kernel did not take yet, oldest first. */
  private pending: Uint8Array[] | null = null;
  socket!: Socket<BunSocket>;

  constructor(events: SocketEvents) {
    this.events = events;
  }

  write(data: Uint8Array | string): boolean {
    if (this.closed) return false;
    if (this.pending) {
      this.pending.push(typeof data === "string" ? encoder.encode(data) : data);
      return false;
    }
    const written = this.socket.write(data);
    // Strings are ASCII (RawSocket.write), so their length is their byte length.
    if (written >= (typeof data === "string" ? data.length : data.byteLength)) return true;
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    this.pending = [bytes.subarray(Math.max(written, 0))];
    return false;
  }

  flush(): void {
    const pending = this.pending;
    if (!pending) return;
    while (pending.length) {
      const chunk = pending[0]!;
      const written = this.socket.write(chunk);
      if (written < chunk.byteLength) {
        pending[0] = chunk.subarray(Math.max(written, 0));
        return;
      }
      pending.shift();
    }
    this.pending = null;
    this.events.drain();
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
    this.pending = null;
    this.socket.terminate();
  }

  ended(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = null;
    this.events.close(error);
  }
}

/** Bun replaces its roots when `ca` is given: the system roots are added back, once per options object. */
const tlsCache = new WeakMap<SocketTls, object>();
function bunTls(tls: SocketTls, serverName: string | undefined): object {
  let options = tlsCache.get(tls);
  if (!options) {
    options = {
      ...(tls.ca?.length ? { ca: withSystemRoots(tls.ca) } : {}),
      ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
      rejectUnauthorized: tls.verify !== false,
      ...(tls.serverName ? { serverName: tls.serverName } : {}),
    };
    tlsCache.set(tls, options);
  }
  return tls.serverName || !serverName ? options : { ...options, serverName };
}

const IP = /^[\d.]+$|:/;

export function connect(options: ConnectOptions, events: SocketEvents): Promise<RawSocket> {
  const raw = new BunSocket(events);
  const tls = options.tls;
  return new Promise<RawSocket>((resolve, reject) => {
    let settled = false;
    const fail = (error: ConnectError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      raw.closed = true;
      reject(error);
    };
    const succeed = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(raw);
    };
    const timer = setTimeout(() => {
      fail(new ConnectError("timeout", `connecting to ${options.hostname}:${options.port} took longer than ${options.timeoutMs} ms`));
      raw.socket?.terminate();
    }, options.timeoutMs);
    const handlers: SocketHandler<BunSocket> = {
      open(socket) {
        raw.socket = socket;
        socket.setNoDelay(true);
        if (!tls) succeed();
      },
      handshake(socket, success, error) {
        if (success && (!error || tls?.verify === false)) return succeed();
        fail(
          new ConnectError("tls", `TLS handshake with ${options.hostname}:${options.port} failed: ${error?.message ?? "handshake failed"}`, {
            cause: error,
          }),
        );
        socket.terminate();
      },
      data(_socket, data) {
        if (settled && !raw.closed) raw.events.data(data);
      },
      drain() {
        if (settled) raw.flush();
      },
      end(socket) {
        if (!settled) fail(new ConnectError(tls ? "tls" : "refused", `${options.hostname}:${options.port} closed the connection while connecting`));
        else raw.ended();
        socket.end();
      },
      close(_socket, error) {
        if (!settled)
          fail(
            new ConnectError(tls ? "tls" : "refused", `${options.hostname}:${options.port} closed the connection while connecting`, { cause: error }),
          );
        else raw.ended(error);
      },
      error(_socket, error) {
        if (!settled) fail(new ConnectError(tls ? "tls" : "refused", error.message, { cause: error }));
        else raw.ended(error);
      },
      connectError(_socket, error) {
        fail(new ConnectError("refused", `cannot connect to ${options.hostname}:${options.port}: ${error.message}`, { cause: error }));
      },
    };
    const serverName = tls && !tls.serverName && IP.test(options.hostname) ? undefined : options.hostname;
    Bun.connect<BunSocket>({
      hostname: options.hostname,
      port: options.port,
      socket: handlers,
      ...(tls ? { tls: bunTls(tls, serverName) } : {}),
    } as unknown as Bun.TCPSocketConnectOptions<BunSocket>).catch((error: Error) => {
      fail(new ConnectError("refused", `cannot connect to ${options.hostname}:${options.port}: ${error.message}`, { cause: error }));
    });
  });
}
