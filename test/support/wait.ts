/** Polling for something another process does in its own time (a rotation reaching a peer, a health check). */

/** Resolves once `check` holds, with the milliseconds that took; fails naming `what` after `timeoutMs`. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000, everyMs = 50): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what} (${timeoutMs} ms)`);
    await Bun.sleep(everyMs);
  }
  return Date.now() - started;
}
