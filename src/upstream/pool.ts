/**
 * Keep-alive connections to one upstream endpoint (host, port and TLS settings), with kong.conf's
 * limits: at most `poolSize` idle connections, `maxRequests` requests per connection, closed after
 * `idleTimeoutMs` idle. Idle connections are reused newest first (the least likely to have been
 * closed by the upstream's own idle timeout); one the upstream closed anyway is retried once on a
 * fresh connection, for requests that can be sent again (no body, or bytes).
 */
import { UpstreamTimeoutError, UpstreamUnavailableError } from "../errors.ts";
import { ConnectError } from "../runtime/connect-error.ts";
import type { ConnectOptions, RawSocket, SocketEvents, SocketTls } from "../runtime/types.ts";
import {
  HttpConnection,
  StaleConnectionError,
  type ConnectionOwner,
  type ExchangeControl,
  type UpstreamResponse,
  type UpstreamTimeouts,
} from "./connection.ts";
import type { UpstreamRequest } from "./request-head.ts";

export type { UpstreamResponse, UpstreamTimeouts, ExchangeControl } from "./connection.ts";
export type { UpstreamRequest } from "./request-head.ts";

export type Connect = (options: ConnectOptions, events: SocketEvents) => Promise<RawSocket>;

export interface KeepaliveOptions {
  /** Idle connections kept (kong.conf `upstream_keepalive_pool_size`); 0 disables keep-alive. */
  readonly poolSize: number;
  /** Requests per connection before it is closed (`upstream_keepalive_max_requests`); 0: no limit. */
  readonly maxRequests: number;
  /** An idle connection is closed after this (`upstream_keepalive_idle_timeout`, in ms); 0: never. */
  readonly idleTimeoutMs: number;
}

export interface Endpoint {
  readonly hostname: string;
  readonly port: number;
  /** TLS to the upstream; absent: plain TCP. */
  readonly tls?: SocketTls;
}

/** The largest response header section accepted (as nginx's proxy_buffer_size, generously). */
const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;

export class ConnectionPool implements ConnectionOwner {
  private idle: HttpConnection[] = [];
  private sweepTimer: ReturnType<typeof setTimeout> | undefined;
  private closedPool = false;
  private readonly sweep = () => this.sweepIdle();

  constructor(
    readonly endpoint: Endpoint,
    private readonly connect: Connect,
    private readonly keepalive: KeepaliveOptions,
  ) {}

  /**
   * Sends `req` and resolves with the response head (and a small body whole, a larger one as a
   * stream). `retries`: further attempts when connecting fails, for requests that can be sent again.
   */
  async request(req: UpstreamRequest, timeouts: UpstreamTimeouts, retries = 0, control?: ExchangeControl): Promise<UpstreamResponse> {
    const resendable = !(req.body instanceof ReadableStream);
    let attempts = 0;
    let staleRetried = false;
    for (;;) {
      let connection = this.takeIdle();
      if (!connection) {
        try {
          connection = await this.open(timeouts.connect);
        } catch (error) {
          if (error instanceof ConnectError && error.reason === "refused" && resendable && attempts < retries) {
            attempts++;
            continue;
          }
          throw connectFailure(error, timeouts.connect);
        }
      }
      try {
        return await connection.send(req, timeouts, control);
      } catch (error) {
        if (error instanceof StaleConnectionError && !staleRetried) {
          staleRetried = true;
          continue;
        }
        throw error instanceof StaleConnectionError ? new UpstreamUnavailableError(error.message, { cause: error }) : error;
      }
    }
  }

  private async open(timeoutMs: number): Promise<HttpConnection> {
    const connection = new HttpConnection(this, MAX_RESPONSE_HEAD_BYTES);
    const { hostname, port, tls } = this.endpoint;
    connection.socket = await this.connect(tls ? { hostname, port, tls, timeoutMs } : { hostname, port, timeoutMs }, connection);
    return connection;
  }

  private takeIdle(): HttpConnection | undefined {
    const idle = this.idle;
    const limit = this.keepalive.idleTimeoutMs;
    while (idle.length) {
      const connection = idle.pop()!;
      if (connection.closed) continue;
      if (limit > 0 && performance.now() - connection.idleSince >= limit) {
        connection.destroy();
        continue;
      }
      return connection;
    }
    return undefined;
  }

  release(connection: HttpConnection): void {
    const { poolSize, maxRequests, idleTimeoutMs } = this.keepalive;
    if (this.closedPool || this.idle.length >= poolSize || (maxRequests > 0 && connection.requests >= maxRequests)) {
      connection.destroy();
      return;
    }
    connection.idleSince = performance.now();
    this.idle.push(connection);
    if (idleTimeoutMs > 0 && this.sweepTimer === undefined) this.scheduleSweep(idleTimeoutMs);
  }

  discard(connection: HttpConnection): void {
    const at = this.idle.indexOf(connection);
    if (at >= 0) this.idle.splice(at, 1);
  }

  private scheduleSweep(ms: number): void {
    this.sweepTimer = setTimeout(this.sweep, ms);
    (this.sweepTimer as { unref?: () => void }).unref?.();
  }

  /** Closes connections idle for longer than the idle timeout (they would be refused by `takeIdle` anyway). */
  private sweepIdle(): void {
    this.sweepTimer = undefined;
    const limit = this.keepalive.idleTimeoutMs;
    const now = performance.now();
    for (const connection of [...this.idle]) if (now - connection.idleSince >= limit) connection.destroy();
    if (this.idle.length) this.scheduleSweep(Math.max(1, limit - (now - this.idle[0]!.idleSince)));
  }

  /** Idle connections now open (for tests and metrics). */
  get idleCount(): number {
    return this.idle.length;
  }

  close(): void {
    this.closedPool = true;
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const connection of [...this.idle]) connection.destroy();
    this.idle = [];
  }
}

function connectFailure(error: unknown, timeoutMs: number): Error {
  if (error instanceof ConnectError && error.reason === "timeout")
    return new UpstreamTimeoutError(`the upstream timed out (connect_timeout = ${timeoutMs} ms)`, { cause: error });
  return new UpstreamUnavailableError(`the upstream could not be reached: ${(error as Error)?.message ?? "unknown error"}`, { cause: error });
}
