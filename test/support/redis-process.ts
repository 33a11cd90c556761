/**
 * A real `redis-server` (or `valkey-server`) for the cluster suites: loopback, a free port, no
 * persistence, stopped by the test. `kill()` and `start()` again on the same port make
 * "Redis down" and "Redis back" real. Install with `bash scripts/ensure-redis.sh`.
 *
 *   const redis = await startRedis();
 *   ... redis.url ... await redis.kill(); ... await redis.start(); ... await redis.stop();
 */
import { spawnSync } from "node:child_process";
import { freePort } from "./gateway-process.ts";
import { listening } from "./wait.ts";

export interface RedisProcess {
  readonly port: number;
  readonly url: string;
  /** SIGKILL: connections drop at once, nothing is saved. */
  kill(): Promise<void>;
  /** Starts again on the same port (empty: nothing was persisted). */
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT: Redis keeps its connections but stops answering. */
  pause(): void;
  resume(): void;
  /** Runs `redis-cli` against it (e.g. `["--scan"]`), returns stdout. */
  cli(args: readonly string[]): string;
  stop(): Promise<void>;
}

function binary(name: "server" | "cli"): string {
  for (const candidate of [`redis-${name}`, `valkey-${name}`]) {
    if (spawnSync("sh", ["-c", `command -v ${candidate}`]).status === 0) return candidate;
  }
  throw new Error(`redis-${name} is not installed: run \`bash scripts/ensure-redis.sh\``);
}

export async function startRedis(): Promise<RedisProcess> {
  const server = binary("server");
  const cliBin = binary("cli");
  const port = await freePort();
  let proc: ReturnType<typeof Bun.spawn> | undefined;

  const start = async () => {
    proc = Bun.spawn([server, "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes"], {
      stdout: "ignore",
      stderr: "pipe",
    });
    if (!(await listening(port, 10_000))) {
      proc.kill("SIGKILL");
      throw new Error(`${server} did not listen on ${port}`);
    }
  };
  const kill = async () => {
    if (!proc) return;
    proc.kill("SIGKILL");
    await proc.exited;
    proc = undefined;
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    kill,
    start,
    pause: () => proc?.kill("SIGSTOP"),
    resume: () => proc?.kill("SIGCONT"),
    cli: (args) => spawnSync(cliBin, ["-p", String(port), ...args], { encoding: "utf8" }).stdout,
    async stop() {
      proc?.kill("SIGCONT");
      await kill();
    },
  };
}
