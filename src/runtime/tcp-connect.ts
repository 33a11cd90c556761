/** A TCP connect that is closed at once (active `tcp` health checks); node:net works on Bun and Deno alike. */
import { nodeNet } from "./builtins.ts";

/** Resolves once connected; rejects on failure, with `timeout: true` when `timeoutMs` passed first. */
export function tcpConnect(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((ok, fail) => {
    const socket = nodeNet().connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      fail(Object.assign(new Error(`connect to ${host}:${port} timed out`), { timeout: true }));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.destroy();
      ok();
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      socket.destroy();
      fail(error);
    });
  });
}
