import { describe, expect, it } from "bun:test";
import { handlerFailed } from "../../../src/runtime/handler-failure.ts";
import type { ListenOptions } from "../../../src/runtime/types.ts";

const options = (onError?: ListenOptions["onError"]): ListenOptions => ({
  hostname: "127.0.0.1",
  port: 0,
  handler: () => new Response(),
  ...(onError ? { onError } : {}),
});

describe("a listener whose request handler threw", () => {
  it("answers what the gateway's onError answers, given the error and the request", () => {
    const seen: unknown[] = [];
    const request = new Request("http://localhost/a");
    const answer = handlerFailed(
      options((error, req) => {
        seen.push(error, req);
        return new Response("logged", { status: 500, headers: { "x-request-id": "id-1" } });
      }),
      new Error("boom"),
      request,
    );
    expect(answer.headers.get("x-request-id")).toBe("id-1");
    expect(seen).toEqual([new Error("boom"), request]);
  });

  it("answers a bare JSON 500 without onError, or when onError throws too", async () => {
    for (const opts of [
      options(),
      options(() => {
        throw new Error("the logger failed");
      }),
    ]) {
      const answer = handlerFailed(opts, new Error("boom"), undefined);
      expect(answer.status).toBe(500);
      expect(await answer.json()).toEqual({ message: "An unexpected error occurred" });
    }
  });
});
