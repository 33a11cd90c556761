/**
 * The echo upstream (test/support/upstream.ts) as its own process, for suites that kill and
 * restart a target of a load-balanced upstream.
 */
import { join, resolve } from "node:path";
import { freePort } from "./gateway-process.ts";

const ROOT = resolve(import.meta.dir, "../..");

export interface UpstreamProcess {
  readonly port: number;
  readonly target: string;
  /** SIGKILL: the target vanishes without closing anything gracefully. */
  kill(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
}

async function spawnOn(port: number) {
  const proc = Bun.spawn([join(ROOT, "node_modules/.bin/bun"), join(ROOT, "test/support/upstream.ts"), String(port)], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = proc.stdout.getReader();
  let text = "";
  const deadline = Date.now() + 15_000;
  while (!text.includes("upstream.ready")) {
    if (Date.now() > deadline) throw new Error(`upstream on ${port} did not start`);
    const { done, value } = await reader.read();
    if (done) throw new Error(`upstream on ${port} exited: ${text}`);
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  void proc.stdout.pipeTo(new WritableStream()).catch(() => {});
  return proc;
}

export async function startUpstreamProcess(): Promise<UpstreamProcess> {
  const port = await freePort();
  let proc = await spawnOn(port);
  return {
    port,
    target: `127.0.0.1:${port}`,
    async kill() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
    async restart() {
      proc = await spawnOn(port);
    },
  };
}
