/**
 * The last step of every route: stream the request to the service and the response back.
 * Request bodies are never buffered, response bodies only when small (`BUFFERED_BODY_MAX`);
 * every wait is bounded by the service's timeouts.
 */
import { NoHealthyPeerError, UpstreamTimeoutError, UpstreamUnavailableError } from "../errors.ts";
import type { ServiceConfig } from "../config/schema.ts";
import type { FetchLike } from "../runtime/types.ts";
import type { ConnectionPool, UpstreamResponse, UpstreamTimeouts } from "../upstream/pool.ts";
import type { HeadLines } from "../upstream/request-head.ts";
import type { TargetPicker } from "../upstream/balancer/upstream-pool.ts";
import type { Target } from "../upstream/balancer/target.ts";
import { ConnectError } from "../runtime/connect-error.ts";
import { CallerWatch } from "./caller-watch.ts";
import { downstreamResponseHeaders } from "./headers.ts";

export interface ProxyRequest {
  readonly method: string;
  /** The upstream URL (origin, path and query), as a string. */
  readonly url: string;
  readonly headers: Headers;
  readonly body: ReadableStream<Uint8Array> | null;
  /** The caller's request; its `signal` aborts when the caller goes away (read lazily, see caller-watch.ts). */
  readonly caller: { readonly signal: AbortSignal };
  /**
   * For a service balanced over an `[[upstreams]]`: picks the target (host, port) of each attempt,
   * which replaces the authority of `url` after `scheme` ("http://"); a retry goes to another target.
   */
  readonly targets?: { readonly picker: TargetPicker; readonly scheme: string; readonly pathAndQuery: string };
}

export interface ProxyResult {
  readonly response: Response;
  /** Milliseconds from sending the request to the upstream's response headers. */
  readonly upstreamLatency: number;
}

/** Errors a fetch throws when it never reached the upstream: safe to retry. */
function isConnectFailure(error: unknown): boolean {
  const code = (error as { code?: string })?.code ?? "";
  if (/ConnectionRefused|ECONNREFUSED|ConnectionClosed|ECONNRESET|FailedToOpenSocket|ENOTFOUND|EHOSTUNREACH/i.test(code)) return true;
  // Deno says "fetch failed" and puts the reason ("tcp connect error: Connection refused") in `cause`.
  const cause = (error as { cause?: unknown })?.cause;
  return /connection refused|unable to connect|tcp connect error/i.test(
    `${(error as Error)?.message} ${cause instanceof Error ? cause.message : ""}`,
  );
}

/**
 * A response body up to this size, with a declared length, is read whole and sent in one piece
 * (as nginx buffers small responses): streaming it through a JS stream costs more than the
 * rest of the proxy path together. Larger and unsized bodies stream.
 */
const BUFFERED_BODY_MAX = 64 * 1024;

/** The `Content-Length` the upstream declared, when it is a plain number (and not chunked). */
function declaredLength(headers: Headers): number | undefined {
  const value = headers.get("content-length");
  if (value === null || !/^\d{1,10}$/.test(value) || headers.has("transfer-encoding")) return undefined;
  return Number(value);
}

/**
 * Wraps the upstream body so that a stall longer than `idleMs` between two chunks ends the
 * response instead of holding the caller forever.
 */
function withIdleTimeout(body: ReadableStream<Uint8Array>, idleMs: number, abort: () => void, onDone?: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const timer = setTimeout(abort, idleMs);
      try {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          onDone?.();
        } else controller.enqueue(value);
      } catch (error) {
        controller.error(error);
      } finally {
        clearTimeout(timer);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

/**
 * Wraps the request body so that every wait of the upload is bounded: for the first pull
 * (connecting) `firstMs`, then `idleMs` both for the caller to send the next chunk and for the
 * upstream connection to take it. A connection that never reads, or a caller that stops
 * sending, ends the exchange instead of holding it forever.
 */
function uploadWithTimeouts(
  body: ReadableStream<Uint8Array>,
  firstMs: number,
  idleMs: number,
  abort: () => void,
  onDone: () => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let timer = setTimeout(abort, firstMs);
  const restart = () => {
    clearTimeout(timer);
    timer = setTimeout(abort, idleMs);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      restart();
      try {
        const { done, value } = await reader.read();
        if (done) {
          clearTimeout(timer);
          controller.close();
          onDone();
        } else {
          controller.enqueue(value);
          restart(); // now the wait is for the upstream connection to pull again
        }
      } catch (error) {
        clearTimeout(timer);
        controller.error(error);
      }
    },
    cancel(reason) {
      clearTimeout(timer);
      return reader.cancel(reason);
    },
  });
}

export async function proxy(fetchUpstream: FetchLike, service: ServiceConfig, req: ProxyRequest): Promise<ProxyResult> {
  const controller = new AbortController();
  let timedOut = false;
  const onTimeout = () => {
    timedOut = true;
    controller.abort();
  };
  const watch = new CallerWatch(req.caller);
  watch.abort = () => controller.abort();
  const stopWatching = () => watch.end();
  // The wait for response headers is connect_timeout + read_timeout, counted from the end of
  // the request body: an upload is bounded by write_timeout between two chunks instead.
  const deadline = service.connect_timeout + service.read_timeout;
  let headerTimer: ReturnType<typeof setTimeout> | undefined;
  const startDeadline = () => {
    headerTimer = setTimeout(onTimeout, deadline);
  };
  const body = req.body
    ? uploadWithTimeouts(req.body, service.connect_timeout + service.write_timeout, service.write_timeout, onTimeout, startDeadline)
    : null;
  if (!body) startDeadline();

  const canRetry = req.body === null;
  const init: RequestInit & { duplex?: "half" } = {
    method: req.method,
    headers: req.headers,
    body,
    signal: controller.signal,
    redirect: "manual",
  };
  if (body) init.duplex = "half";

  const started = performance.now();
  const targets = req.targets;
  let response: Response | undefined;
  for (let attempt = 0; ; attempt++) {
    const attemptStarted = targets ? performance.now() : 0;
    try {
      const url = targets ? `${targets.scheme}//${targets.picker.pick().authority}${targets.pathAndQuery}` : req.url;
      response = await fetchUpstream(url, init);
      targets?.picker.done({ kind: "http", status: response.status }, performance.now() - attemptStarted);
      break;
    } catch (error) {
      if (targets) {
        if (error instanceof NoHealthyPeerError) {
          clearTimeout(headerTimer);
          stopWatching();
          throw error;
        }
        // Any other failure of the exchange (refused, reset, closed early) counts against the target, as in Kong.
        targets.picker.done(timedOut ? { kind: "timeout" } : req.caller.signal.aborted ? undefined : { kind: "tcp_failure" }, 0);
      }
      if (timedOut) {
        clearTimeout(headerTimer);
        stopWatching();
        throw new UpstreamTimeoutError(
          `the upstream timed out (connect_timeout + read_timeout = ${deadline} ms, write_timeout = ${service.write_timeout} ms)`,
          { cause: error },
        );
      }
      if (canRetry && attempt < service.retries && isConnectFailure(error) && !req.caller.signal.aborted) continue;
      clearTimeout(headerTimer);
      stopWatching();
      throw new UpstreamUnavailableError(`the upstream could not be reached: ${(error as Error)?.message ?? "unknown error"}`, { cause: error });
    }
  }
  clearTimeout(headerTimer);
  const upstreamLatency = performance.now() - started;
  let responseBody: BodyInit | null = null;
  if (response.body) {
    const length = req.method === "HEAD" ? undefined : declaredLength(response.headers);
    if (length === undefined || length > BUFFERED_BODY_MAX)
      responseBody = withIdleTimeout(response.body, service.read_timeout, onTimeout, stopWatching);
    else {
      // The whole (small) body within read_timeout; a failure now is still a clean 502/504.
      const bodyTimer = setTimeout(onTimeout, service.read_timeout);
      try {
        responseBody = await response.bytes();
      } catch (error) {
        if (timedOut)
          throw new UpstreamTimeoutError(`the upstream's response body stalled for read_timeout = ${service.read_timeout} ms`, { cause: error });
        throw new UpstreamUnavailableError(`the upstream's response body failed: ${(error as Error)?.message ?? "unknown error"}`, { cause: error });
      } finally {
        clearTimeout(bodyTimer);
        stopWatching();
      }
    }
  } else stopWatching();
  return {
    response: new Response(responseBody, {
      status: response.status,
      statusText: response.statusText,
      headers: downstreamResponseHeaders(response.headers),
    }),
    upstreamLatency,
  };
}

/** The caller's response: the upstream's, with our `X-Request-Id` in the header list (a `set` on the built Response costs more). */
function downstreamResponse(upstream: UpstreamResponse, requestId: string): Response {
  const headers = upstream.headers;
  for (let i = headers.length - 1; i >= 0; i--) if (headers[i]![0] === "x-request-id") headers.splice(i, 1);
  headers.push(["x-request-id", requestId]);
  const body = upstream.body as BodyInit | null;
  // "200 OK" is what the listener writes anyway; checking a statusText costs ~0.2 µs a response.
  if (upstream.status === 200 && upstream.statusText === "OK") return new Response(body, { status: 200, headers });
  return new Response(body, { status: upstream.status, statusText: upstream.statusText, headers });
}

export interface PooledProxyRequest {
  readonly method: string;
  /** Path and query for the upstream. */
  readonly target: string;
  /** The Host header the upstream receives. */
  readonly host: string;
  readonly headers: Headers | HeadLines;
  readonly body: ReadableStream<Uint8Array> | null;
  /** The caller's request; its `signal` aborts when the caller goes away (read lazily, see caller-watch.ts). */
  readonly caller: { readonly signal: AbortSignal };
  /** Sent back as `X-Request-Id`, in place of the upstream's own. */
  readonly requestId: string;
}

/**
 * The proxy step through the gateway's own HTTP/1.1 client (src/upstream/): Kong's timeouts
 * (connect_timeout for TCP + TLS, write_timeout between writes, read_timeout between reads
 * including the wait for the response headers) are the connection's; here the caller is watched.
 */
export async function proxyPooled(
  pool: ConnectionPool,
  service: ServiceConfig,
  timeouts: UpstreamTimeouts,
  req: PooledProxyRequest,
): Promise<ProxyResult> {
  const watch = new CallerWatch(req.caller);
  const started = performance.now();
  try {
    const upstream = await pool.request(
      { method: req.method, target: req.target, host: req.host, headers: req.headers, body: req.body },
      timeouts,
      service.retries,
      watch,
    );
    const upstreamLatency = performance.now() - started;
    return { response: downstreamResponse(upstream, req.requestId), upstreamLatency };
  } finally {
    watch.end();
  }
}

export interface BalancedProxyRequest extends PooledProxyRequest {
  /** Chooses each attempt's target of the service's `[[upstreams]]`. */
  readonly picker: TargetPicker;
  /** The keep-alive pool of a target. */
  poolFor(target: Target): ConnectionPool;
  /** The Host header (preserve_host, or the upstream's host_header); absent: the target's host[:port], as Kong. */
  readonly hostHeader?: string;
}

/**
 * The proxy step for a service balanced over an upstream: each attempt goes to a target the
 * picker chooses, a refused connection is retried on another target (`retries`, for requests that
 * can be sent again), and every outcome is counted for passive health checks.
 */
export async function proxyBalanced(service: ServiceConfig, timeouts: UpstreamTimeouts, req: BalancedProxyRequest): Promise<ProxyResult> {
  const watch = new CallerWatch(req.caller);
  const started = performance.now();
  const resendable = !(req.body instanceof ReadableStream);
  const defaultPort = service.url.protocol === "https:" ? 443 : 80;
  try {
    for (let attempt = 0; ; attempt++) {
      const target = req.picker.pick();
      const host = req.hostHeader ?? (target.port === defaultPort ? target.name.slice(0, target.name.lastIndexOf(":")) : target.name);
      const attemptStarted = performance.now();
      try {
        const upstream = await req
          .poolFor(target)
          .request({ method: req.method, target: req.target, host, headers: req.headers, body: req.body }, timeouts, 0, watch);
        req.picker.done({ kind: "http", status: upstream.status }, performance.now() - attemptStarted);
        const upstreamLatency = performance.now() - started;
        return { response: downstreamResponse(upstream, req.requestId), upstreamLatency };
      } catch (error) {
        const cause = (error as { cause?: unknown }).cause;
        const refused = cause instanceof ConnectError && cause.reason === "refused";
        // Any failure of the exchange (refused, reset, closed early, TLS) counts against the target, as in Kong.
        req.picker.done(error instanceof UpstreamTimeoutError ? { kind: "timeout" } : watch.left ? undefined : { kind: "tcp_failure" }, 0);
        if (refused && resendable && attempt < service.retries) continue;
        throw error;
      }
    }
  } finally {
    watch.end();
  }
}
