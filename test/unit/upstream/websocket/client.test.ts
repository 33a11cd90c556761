import { describe, expect, it } from "bun:test";
import type { RawSocket, SocketEvents } from "../../../../src/runtime/types.ts";
import { openUpstreamWebSocket, type Connector } from "../../../../src/upstream/websocket/client.ts";

/** A connection whose upstream answers the handshake with `answer`. */
function answering(answer: string): Connector {
  return async (events: SocketEvents) => {
    const socket: RawSocket = {
      events,
      closed: false,
      write() {
        queueMicrotask(() => events.data(new TextEncoder().encode(answer)));
        return true;
      },
      pause() {},
      resume() {},
      destroy() {},
    };
    return socket;
  };
}

describe("the upstream's refusal of a WebSocket handshake", () => {
  it("comes back as its HTTP answer, without the upstream connection's hop-by-hop headers", async () => {
    const answer =
      "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 4\r\nconnection: close\r\nkeep-alive: timeout=5\r\n" +
      "te: trailers\r\ntrailer: x-checksum\r\nproxy-authenticate: Basic\r\nx-reason: policy\r\n\r\nnope";
    const result = await openUpstreamWebSocket(answering(answer), { target: "/ws", host: "upstream", headers: new Headers() }, 1000, 1024);
    if (result.kind !== "refused") throw new Error("expected a refusal");
    expect(result.response.status).toBe(403);
    expect(await result.response.text()).toBe("nope");
    expect([...result.response.headers.keys()].sort()).toEqual(["content-type", "x-reason"]);
  });
});
