/**
 * One HTTP/1.1 connection to an upstream, one exchange at a time, with Kong's timeouts:
 * `write_timeout` bounds the gap between two successive writes of the request, `read_timeout`
 * the gap between two successive reads of the response, starting when the request was sent
 * (so it includes the wait for the response headers). Bodies stream both ways with
 * backpressure; a small response with a declared length is handed over whole.
 */
import { UpstreamTimeoutError, UpstreamUnavailableError } from "../errors.ts";
import type { RawSocket, SocketEvents } from "../runtime/types.ts";
import { headBytes, requestHead, type UpstreamRequest } from "./request-head.ts";
import { ResponseParseError, ResponseParser, type ParserEvents, type ResponseHead } from "./response-parser.ts";

export interface UpstreamTimeouts {
  readonly connect: number;
  readonly write: number;
  readonly read: number;
}

export interface UpstreamResponse {
  readonly status: number;
  readonly statusText: string;
  /** End-to-end headers as [name, value] pairs (hop-by-hop ones removed). */
  readonly headers: [string, string][];
  readonly body: Uint8Array | ReadableStream<Uint8Array> | null;
}

/** Lets the caller of `send` abort the exchange (the caller of the gateway went away). */
export interface ExchangeControl {
  abort?: () => void;
}

/**
 * A response body up to this size, with a declared length, is read whole and handed over in one
 * piece (as nginx buffers small responses): a JS stream per response costs more than the rest
 * of the proxy path together. Larger and unsized bodies stream.
 */
const BUFFERED_BODY_MAX = 64 * 1024;

/** Response body chunks queued towards the caller before the upstream socket is paused. */
const STREAM_HIGH_WATER = 8;

/** A reused connection ended before any byte of the response: the request never reached the upstream's application. */
export class StaleConnectionError extends Error {
  override readonly name = "StaleConnectionError";
}

/** What a connection tells its pool. */
export interface ConnectionOwner {
  /** The exchange is over and the connection can carry another request. */
  release(connection: HttpConnection): void;
  /** The connection is gone (closed, failed or broke the protocol). */
  discard(connection: HttpConnection): void;
}

const enum Phase {
  Idle,
  Writing,
  Reading,
  Closed,
}

const noop = () => {};

export class HttpConnection implements SocketEvents, ParserEvents {
  socket!: RawSocket;
  /** Exchanges started on this connection. */
  requests = 0;
  /** `performance.now()` when the connection last became idle. */
  idleSince = 0;
  private phase = Phase.Idle;
  /** Why the socket closed while no exchange was on it. */
  private closedBy: Error | undefined;
  private readonly parser: ResponseParser;
  // The current exchange; reset by `send`.
  private timeouts: UpstreamTimeouts = { connect: 0, write: 0, read: 0 };
  private resolve: (response: UpstreamResponse) => void = noop;
  private reject: (error: Error) => void = noop;
  private responded = false;
  private received = false;
  private requestDone = false;
  private keepAlive = false;
  private responseHead: ResponseHead | undefined;
  private buffered: Uint8Array | undefined;
  private bufferedAt = 0;
  private stream: ReadableStreamDefaultController<Uint8Array> | undefined;
  private reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  private drained: (() => void) | undefined;
  private paused = false;
  private retryable = false;
  // One timer, pushed forward lazily: `lastActivity` moves, the timer re-arms when it fires. It is
  // left running when an exchange ends (it stops itself on an idle connection), so a kept-alive
  // connection does not set and clear a timer per request.
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastActivity = 0;
  private readonly onTimer = () => this.checkTimer();

  constructor(
    private readonly owner: ConnectionOwner,
    maxHeadBytes: number,
  ) {
    this.parser = new ResponseParser(this, maxHeadBytes);
  }

  get closed(): boolean {
    return this.phase === Phase.Closed || this.socket.closed;
  }

  send(req: UpstreamRequest, timeouts: UpstreamTimeouts, control?: ExchangeControl): Promise<UpstreamResponse> {
    this.requests++;
    // Closed before the request went out, e.g. by a TLS 1.3 alert after the handshake (an upstream
    // refusing the client certificate, or its absence): an upstream failure now, not a read_timeout later.
    if (this.closed) {
      this.phase = Phase.Closed;
      const why = `the upstream closed the connection before the request was sent${this.closedBy ? ` (${this.closedBy.message})` : ""}`;
      return Promise.reject(this.requests > 1 ? new StaleConnectionError(why) : new UpstreamUnavailableError(why, { cause: this.closedBy }));
    }
    const { head, framing } = requestHead(req);
    this.timeouts = timeouts;
    this.responded = false;
    this.received = false;
    this.requestDone = false;
    this.responseHead = undefined;
    this.buffered = undefined;
    this.stream = undefined;
    this.paused = false;
    this.retryable = this.requests > 1 && !(req.body instanceof ReadableStream);
    this.parser.start(req.method);
    const promise = new Promise<UpstreamResponse>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    if (control) control.abort = () => this.fail(new UpstreamUnavailableError("the caller went away"));
    const body = req.body;
    this.phase = Phase.Writing;
    if (body === null) {
      this.socket.write(headBytes(head));
      this.requestSent();
    } else if (body instanceof Uint8Array) {
      this.socket.write(headBytes(head));
      if (body.byteLength) this.socket.write(body);
      this.requestSent();
    } else {
      this.arm(timeouts.write);
      const wrote = this.socket.write(headBytes(head));
      void this.pump(body.getReader(), framing.length, wrote);
    }
    return promise;
  }

  /** Streams the request body: each chunk when it arrives, the next one only once the socket took it. */
  private async pump(reader: ReadableStreamDefaultReader<Uint8Array>, length: number, wrote: boolean): Promise<void> {
    this.reader = reader;
    const chunked = length < 0;
    let sent = 0;
    try {
      if (!wrote) await this.waitDrain();
      for (;;) {
        const { done, value } = await reader.read();
        if (this.phase !== Phase.Writing && this.phase !== Phase.Reading) return;
        if (done) break;
        if (!value.byteLength) continue;
        this.touch();
        sent += value.byteLength;
        if (!chunked && sent > length) throw new UpstreamUnavailableError(`the request body is longer than its Content-Length (${length})`);
        let ok = chunked ? this.socket.write(`${value.byteLength.toString(16)}\r\n`) : true;
        ok = this.socket.write(value) && ok;
        if (chunked) ok = this.socket.write("\r\n") && ok;
        if (!ok) await this.waitDrain();
        this.touch();
      }
      if (!chunked && sent !== length) throw new UpstreamUnavailableError(`the request body ended after ${sent} of ${length} bytes`);
      if (chunked && !this.socket.write("0\r\n\r\n")) await this.waitDrain();
      this.reader = undefined;
      this.requestSent();
    } catch (error) {
      this.reader = undefined;
      if (this.phase === Phase.Writing || this.phase === Phase.Reading) this.fail(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** The whole request is on the wire: read_timeout runs from here. */
  private requestSent(): void {
    this.requestDone = true;
    if (this.phase !== Phase.Writing) return;
    this.phase = Phase.Reading;
    this.arm(this.timeouts.read);
  }

  private arm(ms: number): void {
    this.lastActivity = performance.now();
    if (this.timer === undefined) this.startTimer(ms);
  }

  private startTimer(ms: number): void {
    this.timer = setTimeout(this.onTimer, ms);
    // The socket keeps the process alive during an exchange; a timer left on an idle one must not.
    (this.timer as { unref?: () => void }).unref?.();
  }

  private touch(): void {
    this.lastActivity = performance.now();
  }

  private checkTimer(): void {
    this.timer = undefined;
    if (this.phase !== Phase.Writing && this.phase !== Phase.Reading) return;
    const limit = this.phase === Phase.Writing ? this.timeouts.write : this.timeouts.read;
    const idle = performance.now() - this.lastActivity;
    if (this.paused || idle < limit - 1) {
      // The caller is slow to take the response (not the upstream's fault), or there was activity since.
      this.startTimer(this.paused ? limit : limit - idle);
      return;
    }
    const what =
      this.phase === Phase.Writing
        ? `write_timeout = ${limit} ms between two writes of the request`
        : this.responded
          ? `read_timeout = ${limit} ms between two reads of the response body`
          : `read_timeout = ${limit} ms waiting for the response headers`;
    this.fail(new UpstreamTimeoutError(`the upstream timed out (${what})`));
  }

  private stopTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  // ---- socket events ----

  data(chunk: Uint8Array): void {
    if (this.phase !== Phase.Writing && this.phase !== Phase.Reading) {
      // Bytes on an idle connection: the upstream broke the protocol; the connection goes.
      this.destroy();
      return;
    }
    this.received = true;
    this.lastActivity = performance.now();
    try {
      this.parser.push(chunk);
    } catch (error) {
      this.fail(
        error instanceof ResponseParseError
          ? new UpstreamUnavailableError(`the upstream's response is invalid: ${error.message}`, { cause: error })
          : (error as Error),
      );
    }
  }

  drain(): void {
    const resolve = this.drained;
    this.drained = undefined;
    resolve?.();
  }

  private waitDrain(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.drained = resolve;
    });
  }

  close(error?: Error): void {
    this.closedBy = error;
    if (this.phase === Phase.Idle) {
      this.phase = Phase.Closed;
      this.owner.discard(this);
      return;
    }
    if (this.phase === Phase.Closed) return;
    try {
      this.parser.eof();
    } catch (parseError) {
      if (!this.received && this.retryable) {
        this.fail(new StaleConnectionError("the pooled connection was closed by the upstream"));
        return;
      }
      const reason = error ? `${(parseError as Error).message} (${error.message})` : (parseError as Error).message;
      this.fail(new UpstreamUnavailableError(reason, { cause: error ?? parseError }));
    }
  }

  // ---- parser events ----

  head(head: ResponseHead): void {
    this.responseHead = head;
    this.keepAlive = head.keepAlive;
    if (head.framing === "none") return;
    if (head.framing === "length" && head.length <= BUFFERED_BODY_MAX) return; // buffered in body()
    this.responded = true;
    const stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.stream = controller;
        },
        pull: () => {
          if (this.paused) {
            this.paused = false;
            this.lastActivity = performance.now();
            this.socket.resume();
          }
        },
        cancel: () => {
          // The caller stopped reading (went away): the rest of the body has nowhere to go.
          this.stream = undefined;
          this.destroy();
        },
      },
      { highWaterMark: STREAM_HIGH_WATER },
    );
    this.resolve({ status: head.status, statusText: head.statusText, headers: head.headers, body: stream });
  }

  body(bytes: Uint8Array): void {
    const stream = this.stream;
    if (stream) {
      stream.enqueue(bytes);
      if ((stream.desiredSize ?? 1) <= 0 && !this.paused) {
        this.paused = true;
        this.socket.pause();
      }
      return;
    }
    const length = this.responseHead!.length;
    if (this.buffered === undefined && bytes.byteLength === length) {
      this.buffered = bytes;
      this.bufferedAt = length;
      return;
    }
    if (this.buffered === undefined) {
      this.buffered = new Uint8Array(length);
      this.bufferedAt = 0;
    }
    this.buffered.set(bytes, this.bufferedAt);
    this.bufferedAt += bytes.byteLength;
  }

  end(rest: Uint8Array | undefined): void {
    if (rest?.byteLength) this.keepAlive = false; // bytes past the response: the framing cannot be trusted
    const head = this.responseHead!;
    if (this.stream) {
      this.stream.close();
      this.stream = undefined;
    } else if (!this.responded) {
      this.responded = true;
      this.resolve({
        status: head.status,
        statusText: head.statusText,
        headers: head.headers,
        body: head.framing === "none" ? null : (this.buffered ?? new Uint8Array(0)),
      });
    }
    this.buffered = undefined;
    if (this.requestDone) this.finish();
    else {
      // The upstream answered before taking the whole request (e.g. 413): stop sending, never reuse.
      this.keepAlive = false;
      this.phase = Phase.Idle;
      this.finish();
    }
  }

  /** The exchange is complete: back to the pool or closed. */
  private finish(): void {
    const reader = this.reader;
    this.reader = undefined;
    if (reader) void reader.cancel().catch(noop);
    if (this.keepAlive && this.requestDone && !this.socket.closed) {
      this.phase = Phase.Idle;
      this.owner.release(this);
    } else this.destroy();
  }

  private fail(error: Error): void {
    if (this.phase === Phase.Closed) return;
    const stream = this.stream;
    this.stream = undefined;
    this.destroy();
    if (!this.responded) {
      this.responded = true;
      this.reject(error);
    } else stream?.error(error);
  }

  destroy(): void {
    if (this.phase === Phase.Closed) return;
    this.phase = Phase.Closed;
    this.stopTimer();
    const reader = this.reader;
    this.reader = undefined;
    if (reader) void reader.cancel().catch(noop);
    const resolve = this.drained;
    this.drained = undefined;
    resolve?.();
    this.socket?.destroy();
    this.owner.discard(this);
  }
}
