/**
 * Raw upstream connections on Deno (`Deno.connect`, `Deno.connectTls`): the transport of the
 * gateway's HTTP/1.1 client. Deno's reads and writes are promises; a loop turns them into events.
 */
import { ConnectError } from "./connect-error.ts";
import type { ConnectOptions, RawSocket, SocketEvents } from "./types.ts";

const encoder = new TextEncoder();
const READ_SIZE = 64 * 1024;
/** Queued bytes above which `write` asks the writer to wait for `drain`. */
const HIGH_WATER = 64 * 1024;

class DenoSocket implements RawSocket {
  events: SocketEvents;
  closed = false;
  private queue: Uint8Array[] = [];
  private queued = 0;
  private writing = false;
  private needDrain = false;
  private paused: { promise: Promise<void>; resolve(): void } | null = null;

  constructor(
    private readonly conn: Deno.Conn,
    events: SocketEvents,
  ) {
    this.events = events;
  }

  write(data: Uint8Array | string): boolean {
    if (this.closed) return false;
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    this.queue.push(bytes);
    this.queued += bytes.byteLength;
    if (!this.writing) void this.writeLoop();
    if (this.queued <= HIGH_WATER) return true;
    this.needDrain = true;
    return false;
  }

  private async writeLoop(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length && !this.closed) {
        let chunk = this.queue[0]!;
        while (chunk.byteLength) {
          const n = await this.conn.write(chunk);
          this.queued -= n;
          chunk = chunk.subarray(n);
        }
        this.queue.shift();
      }
    } catch (error) {
      this.ended(error as Error);
      return;
    } finally {
      this.writing = false;
    }
    if (this.needDrain && !this.closed) {
      this.needDrain = false;
      this.events.drain();
    }
  }

  async readLoop(): Promise<void> {
    const buffer = new Uint8Array(READ_SIZE);
    try {
      for (;;) {
        if (this.paused) await this.paused.promise;
        if (this.closed) return;
        // One read buffer per connection; each chunk handed on is a copy of what arrived.
        const n = await this.conn.read(buffer);
        if (this.closed) return;
        if (n === null) return this.ended();
        this.events.data(buffer.slice(0, n));
      }
    } catch (error) {
      this.ended(error as Error);
    }
  }

  pause(): void {
    if (this.paused) return;
    let resolve!: () => void;
    this.paused = { promise: new Promise<void>((r) => (resolve = r)), resolve };
  }

  resume(): void {
    const paused = this.paused;
    this.paused = null;
    paused?.resolve();
  }

  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.resume();
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }

  private ended(error?: Error): void {
    if (this.closed) return;
    this.destroy();
    this.events.close(error);
  }
}

export function connect(options: ConnectOptions, events: SocketEvents): Promise<RawSocket> {
  const { hostname, port, tls } = options;
  let conn: Deno.Conn | undefined;
  let settled = false;
  const close = (c: Deno.Conn | undefined) => {
    try {
      c?.close();
    } catch {
      // already closed
    }
  };
  const connecting = async (): Promise<Deno.Conn> => {
    // Deno.startTls takes no client certificate: mTLS to the upstream connects and handshakes in one call.
    if (tls?.cert) {
      try {
        const secure = await Deno.connectTls({
          hostname,
          port,
          ...(tls.ca?.length ? { caCerts: [...tls.ca] } : {}),
          cert: tls.cert,
          key: tls.key ?? "",
        });
        conn = secure;
        await secure.handshake();
        return secure;
      } catch (error) {
        const refused = /refused|unreachable/i.test((error as Error).message);
        throw new ConnectError(
          refused ? "refused" : "tls",
          `${refused ? "cannot connect to" : "TLS handshake with"} ${hostname}:${port} failed: ${(error as Error).message}`,
          { cause: error },
        );
      }
    }
    try {
      conn = await Deno.connect({ hostname, port });
    } catch (error) {
      throw new ConnectError("refused", `cannot connect to ${hostname}:${port}: ${(error as Error).message}`, { cause: error });
    }
    if (settled) return conn;
    conn.setNoDelay?.(true);
    if (!tls) return conn;
    try {
      // The TCP connection is upgraded here so that connect_timeout covers both steps.
      const secure = await Deno.startTls(conn, {
        hostname: tls.serverName ?? hostname,
        ...(tls.ca?.length ? { caCerts: [...tls.ca] } : {}),
        ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
      });
      conn = secure;
      await secure.handshake();
      return secure;
    } catch (error) {
      throw new ConnectError("tls", `TLS handshake with ${hostname}:${port} failed: ${(error as Error).message}`, { cause: error });
    }
  };
  return new Promise<RawSocket>((resolve, reject) => {
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      close(conn);
      reject(new ConnectError("timeout", `connecting to ${hostname}:${port} took longer than ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    connecting().then(
      (connected) => {
        if (settled) return close(connected);
        settled = true;
        clearTimeout(timer);
        const socket = new DenoSocket(connected, events);
        void socket.readLoop();
        resolve(socket);
      },
      (error) => {
        close(conn);
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
