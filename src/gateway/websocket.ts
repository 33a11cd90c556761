/**
 * The proxy step of a WebSocket opening handshake, after the route's plugins ran on it: the
 * handshake goes to the upstream first; its 101 upgrades the caller and frames are relayed both
 * ways, its refusal is passed back as an HTTP answer. An exchange idle for read_timeout is closed.
 */
import type { ServiceConfig } from "../config/schema.ts";
import type { Logger } from "../log.ts";
import { WEBSOCKET_MAX_MESSAGE, type CallerWebSocket, type ConnInfo, type WebSocketSession } from "../runtime/types.ts";
import type { TargetPicker } from "../upstream/balancer/upstream-pool.ts";
import { openUpstreamWebSocket, type Connector, type UpstreamWebSocket } from "../upstream/websocket/client.ts";

/** Close code when the relay ends a connection itself (RFC 6455 §7.4.1: going away). */
const GOING_AWAY = 1001;
/** Close code when the upstream reads too slowly for a caller that cannot be paused (IANA: try again later). */
const TRY_AGAIN_LATER = 1013;
/**
 * Bytes of caller messages taken while the upstream socket is over its write buffer. A paused
 * caller stops at what was already read; one whose listener cannot pause it is closed past this
 * rather than buffered without bound.
 */
const MAX_UPSTREAM_BACKLOG = WEBSOCKET_MAX_MESSAGE;

/** Links an upgraded caller and the upstream socket; returns the caller's session. */
function relay(upstream: UpstreamWebSocket, idleMs: number, onEnd: () => void, onOverflow: (backlog: number) => void): WebSocketSession {
  let caller: CallerWebSocket | undefined;
  let last = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let finished = false;
  const finish = () => {
    if (finished) return false;
    finished = true;
    clearTimeout(timer);
    onEnd();
    return true;
  };
  const checkIdle = () => {
    const idle = performance.now() - last;
    if (idle < idleMs) {
      timer = setTimeout(checkIdle, idleMs - idle);
      return;
    }
    if (!finish()) return;
    upstream.closeWith(GOING_AWAY, "idle");
    caller?.close(GOING_AWAY, "idle");
  };
  // Idle means no byte read either way (nginx's proxy_read_timeout): a big message read slowly is
  // not idle, though it is whole only at its last byte.
  const active = () => {
    last = performance.now();
  };
  upstream.onActivity = active;
  upstream.onMessage = (data) => {
    last = performance.now();
    // The caller's buffer is full: stop reading the upstream until it drains.
    if (caller && !caller.send(data)) upstream.pause();
  };
  upstream.onClose = (code, reason) => {
    if (!finish()) return;
    upstream.closeWith(code, reason);
    if (code === undefined) caller?.close();
    else caller?.close(code, reason);
  };
  upstream.onEnd = () => {
    if (!finish()) return;
    caller?.close(GOING_AWAY, "upstream went away");
  };
  // The upstream's write buffer is full: stop reading the caller (where possible) until it drains.
  let blocked = false;
  let backlog = 0;
  upstream.onDrain = () => {
    blocked = false;
    backlog = 0;
    caller?.resume?.();
  };
  return {
    open(socket) {
      caller = socket;
      upstream.start();
      timer = setTimeout(checkIdle, idleMs);
    },
    message(data) {
      last = performance.now();
      if (blocked) {
        backlog += typeof data === "string" ? data.length : data.byteLength;
        if (backlog > MAX_UPSTREAM_BACKLOG) {
          if (!finish()) return;
          onOverflow(backlog);
          upstream.closeWith(GOING_AWAY, "caller too fast");
          caller?.close(TRY_AGAIN_LATER, "upstream too slow");
          return;
        }
      }
      if (!upstream.send(data) && !blocked) {
        blocked = true;
        caller?.pause?.();
      }
    },
    activity: active,
    close(code, reason) {
      if (!finish()) return;
      upstream.closeWith(code, reason);
    },
    drain() {
      upstream.resume();
    },
  };
}

export interface WebSocketProxyRequest {
  readonly target: string;
  /** The Host header (preserve_host, host_header); absent: the service's or the picked target's. */
  readonly host?: string;
  readonly headers: Headers;
  readonly conn: ConnInfo;
  /** For a balanced service: the target of the (single) attempt. */
  readonly picker?: TargetPicker;
  /** How to reach the service's upstream (or the picked target). */
  connector(endpoint?: { hostname: string; port: number }): Connector;
}

export async function proxyWebSocket(service: ServiceConfig, req: WebSocketProxyRequest, log: Logger): Promise<Response> {
  const target = req.picker?.pick();
  const connector = req.connector(target ? { hostname: target.host, port: target.port } : undefined);
  const defaultPort = service.url.protocol === "https:" ? 443 : 80;
  const host =
    req.host ?? (target ? (target.port === defaultPort ? target.name.slice(0, target.name.lastIndexOf(":")) : target.name) : service.url.host);
  let result;
  try {
    result = await openUpstreamWebSocket(connector, { target: req.target, host, headers: req.headers }, service.read_timeout, WEBSOCKET_MAX_MESSAGE);
  } catch (error) {
    req.picker?.done({ kind: "tcp_failure" }, 0);
    throw error;
  }
  if (result.kind === "refused") {
    req.picker?.done({ kind: "http", status: result.response.status }, 0);
    return result.response;
  }
  const started = performance.now();
  const session = relay(
    result.socket,
    service.read_timeout,
    () => {
      req.picker?.done({ kind: "http", status: 101 }, 0);
      log.debug("websocket.closed", { service: service.name, duration_ms: Math.round(performance.now() - started) });
    },
    (backlog) => log.warn("websocket.upstream_too_slow", { service: service.name, backlog_bytes: backlog, limit_bytes: MAX_UPSTREAM_BACKLOG }),
  );
  try {
    return req.conn.upgrade!(session, result.protocol ? { protocol: result.protocol } : {});
  } catch (error) {
    result.socket.destroy();
    throw error;
  }
}
