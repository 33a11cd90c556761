/**
 * The upstream in memory for the in-process benchmarks with the gateway's own HTTP/1.1 client
 * (bench/micro.ts --pool, bench/routes-micro.ts): nginx's answer as raw bytes on a connection, so
 * the proxy path runs as in the binary without syscalls.
 */
import { upstreamHeaders } from "./micro-harness.ts";

const upstreamBytes = new TextEncoder().encode(
  `HTTP/1.1 200 OK\r\n${Object.entries(upstreamHeaders)
    .map(([k, v]) => `${k[0]!.toUpperCase()}${k.slice(1)}: ${v}`)
    .join("\r\n")}\r\n\r\nok`,
);

/** A connection that answers every request head with the upstream's bytes in a Buffer (as a Bun socket delivers them), on the next microtask. */
export const memoryConnect = async (_options: unknown, events: { data(chunk: Uint8Array): void }) => ({
  events,
  closed: false,
  write(data: Uint8Array | string) {
    if (typeof data !== "string" || data.endsWith("\r\n\r\n")) queueMicrotask(() => events.data(Buffer.from(upstreamBytes)));
    return true;
  },
  pause() {},
  resume() {},
  destroy() {},
});
