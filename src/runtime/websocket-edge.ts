/**
 * WebSocket upgrades on Bun.serve: `server.upgrade` with `websocket` handlers (the node:http
 * listener's are in node-websocket.ts). The core sees `ConnInfo.upgrade` and a session only.
 */
import { WEBSOCKET_MAX_MESSAGE, type CallerWebSocket, type WebSocketSession } from "./types.ts";

/** True for `Upgrade: websocket` (RFC 6455 §4.1), the only upgrade a listener takes over. */
export function wantsWebSocket(headers: Headers): boolean {
  const upgrade = headers.get("upgrade");
  return upgrade !== null && upgrade.toLowerCase() === "websocket";
}

/** Returned by a Bun handler that upgraded: the fetch callback then answers nothing (Bun sent 101). */
export const BUN_UPGRADED = new Response(null, { status: 200 });

interface BunServer {
  upgrade(request: Request, options: { data: WebSocketSession; headers?: Record<string, string> }): boolean;
}
interface BunSocket {
  data: WebSocketSession;
  send(data: string | Uint8Array): number;
  close(code?: number, reason?: string): void;
  pause(): void;
  resume(): void;
}

export function bunUpgrade(server: BunServer, request: Request) {
  return (session: WebSocketSession, options: { readonly protocol?: string }): Response => {
    if (!server.upgrade(request, { data: session, ...(options.protocol ? { headers: { "sec-websocket-protocol": options.protocol } } : {}) })) {
      throw new Error("the listener could not upgrade the connection");
    }
    return BUN_UPGRADED;
  };
}

/** RFC 6455 §7.4 (IANA registry): try again later. */
const TRY_AGAIN_LATER = 1013;

const callerOf = (ws: BunSocket): CallerWebSocket => ({
  send(data) {
    // -1: queued over backpressureLimit (wait for drain); 0: dropped, which the relay never lets
    // happen silently: the connection is closed instead of losing a message.
    const status = ws.send(data);
    if (status === 0) ws.close(TRY_AGAIN_LATER, "send buffer full");
    return status > 0;
  },
  close: (code, reason) => ws.close(code, reason),
  pause: () => ws.pause(),
  resume: () => ws.resume(),
});

/** Bun.serve's `websocket` option: every event goes to the session the upgrade attached. */
export const bunWebSocketHandlers = {
  maxPayloadLength: WEBSOCKET_MAX_MESSAGE,
  // Idle connections are bounded by the service's read_timeout (src/gateway/websocket.ts).
  idleTimeout: 0,
  backpressureLimit: 1024 * 1024,
  sendPings: false,
  open(ws: BunSocket) {
    ws.data.open(callerOf(ws));
  },
  message(ws: BunSocket, message: string | Uint8Array | ArrayBuffer) {
    ws.data.message(typeof message === "string" ? message : message instanceof Uint8Array ? message : new Uint8Array(message));
  },
  close(ws: BunSocket, code: number, reason: string) {
    ws.data.close(code, reason);
  },
  drain(ws: BunSocket) {
    ws.data.drain();
  },
};
