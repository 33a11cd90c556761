/**
 * WebSocket upgrades on the runtimes' own listeners: Bun's `server.upgrade` with `websocket`
 * handlers, Deno's `Deno.upgradeWebSocket`. The core sees `ConnInfo.upgrade` and a session only.
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
}

export function bunUpgrade(server: BunServer, request: Request) {
  return (session: WebSocketSession, options: { readonly protocol?: string }): Response => {
    if (!server.upgrade(request, { data: session, ...(options.protocol ? { headers: { "sec-websocket-protocol": options.protocol } } : {}) })) {
      throw new Error("the listener could not upgrade the connection");
    }
    return BUN_UPGRADED;
  };
}

const callerOf = (ws: BunSocket): CallerWebSocket => ({
  send: (data) => ws.send(data) > 0,
  close: (code, reason) => ws.close(code, reason),
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

/** Bytes queued on a Deno WebSocket above which `send` asks to wait. */
const DENO_HIGH_WATER = 1024 * 1024;

export function denoUpgrade(request: Request) {
  return (session: WebSocketSession, options: { readonly protocol?: string }): Response => {
    const { socket, response } = Deno.upgradeWebSocket(request, { ...(options.protocol ? { protocol: options.protocol } : {}), idleTimeout: 0 });
    socket.binaryType = "arraybuffer";
    let draining: ReturnType<typeof setInterval> | undefined;
    // Deno has no drain event: poll the queue while the session waits for one.
    const waitDrain = () => {
      draining ??= setInterval(() => {
        if (socket.bufferedAmount > DENO_HIGH_WATER / 2 && socket.readyState === WebSocket.OPEN) return;
        clearInterval(draining);
        draining = undefined;
        session.drain();
      }, 10);
    };
    socket.onopen = () =>
      session.open({
        send(data) {
          socket.send(data as string | Uint8Array<ArrayBuffer>);
          if (socket.bufferedAmount <= DENO_HIGH_WATER) return true;
          waitDrain();
          return false;
        },
        close: (code, reason) => socket.close(code, reason),
      });
    socket.onmessage = (event) => session.message(typeof event.data === "string" ? event.data : new Uint8Array(event.data as ArrayBuffer));
    socket.onclose = (event) => {
      clearInterval(draining);
      session.close(event.code, event.reason);
    };
    return response;
  };
}
