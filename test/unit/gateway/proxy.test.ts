/** Every wait of an upstream exchange is bounded, even ones a real socket cannot show on loopback. */
import { describe, expect, it } from "bun:test";
import { UpstreamTimeoutError } from "../../../src/errors.ts";
import { proxy } from "../../../src/gateway/proxy.ts";
import type { FetchLike } from "../../../src/runtime/types.ts";
import { parseToml } from "../../support/config.ts";

const service = parseToml(
  `[[services]]\nname = "s"\nurl = "http://10.255.255.1/"\nconnect_timeout = 100\nwrite_timeout = 100\nread_timeout = 100\n[[routes]]\nname = "r"\nservice = "s"\npaths = ["/"]\n`,
).services[0]!;

/** A fetch whose connection never comes up: it never reads the body and waits for the abort. */
const neverConnects: FetchLike = (_input, init) =>
  new Promise((_ok, fail) => init?.signal?.addEventListener("abort", () => fail(new DOMException("aborted", "AbortError"))));

/** A fetch that reads the first chunk of the body, then stops reading (a stalled upstream). */
const stopsReading: FetchLike = async (_input, init) => {
  const reader = (init!.body as ReadableStream<Uint8Array>).getReader();
  await reader.read();
  return neverConnects(_input, init);
};

const caller = { signal: new AbortController().signal };
const endless = () =>
  new ReadableStream<Uint8Array>({
    pull(c) {
      c.enqueue(new Uint8Array(1024));
    },
  });

describe("proxy timeouts", () => {
  it("gives up on a connection that never comes up, with a request body, after connect_timeout + write_timeout", async () => {
    const started = performance.now();
    await expect(
      proxy(neverConnects, service, { method: "POST", url: "http://10.255.255.1/", headers: new Headers(), body: endless(), caller }),
    ).rejects.toBeInstanceOf(UpstreamTimeoutError);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it("gives up on an upstream that stops reading the request body, after write_timeout", async () => {
    const started = performance.now();
    await expect(
      proxy(stopsReading, service, { method: "POST", url: "http://10.255.255.1/", headers: new Headers(), body: endless(), caller }),
    ).rejects.toBeInstanceOf(UpstreamTimeoutError);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it("gives up on a connection that never comes up, without a body, after connect_timeout + read_timeout", async () => {
    const started = performance.now();
    await expect(
      proxy(neverConnects, service, { method: "GET", url: "http://10.255.255.1/", headers: new Headers(), body: null, caller }),
    ).rejects.toBeInstanceOf(UpstreamTimeoutError);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
