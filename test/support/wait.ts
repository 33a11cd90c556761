/** Polling for something another process does in its own time (a rotation reaching a peer, a health check, a port opening). */
import { connect } from "node:net";

/** Resolves once `check` holds, with the milliseconds that took; fails naming `what` after `timeoutMs`. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000, everyMs = 50): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what} (${timeoutMs} ms)`);
    await Bun.sleep(everyMs);
  }
  return Date.now() - started;
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** Whether a process started on `port` listens within `timeoutMs`. */
export async function listening(port: number, timeoutMs: number, everyMs = 20): Promise<boolean> {
  try {
    await waitUntil(`port ${port}`, () => acceptsConnections(port), timeoutMs, everyMs);
    return true;
  } catch {
    return false;
  }
}
