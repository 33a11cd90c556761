/**
 * The Makefile and `make run`'s tools as a new user meets them: after `make build` (which
 * `make test` runs first) an unchanged tree is up to date, so `make build` and `make run` do not
 * recompile the binary; the development IdP and the echo upstream on a busy port say so in a line.
 */
import { describe, expect, it } from "bun:test";
import { createServer, type Server } from "node:net";
import { resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");

describe("make", () => {
  it("reports the binary up to date after a build (make -q build exits 0)", () => {
    const r = Bun.spawnSync(["make", "-q", "build"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(0);
  });
});

describe("the development IdP and the echo upstream on a busy port", () => {
  const busy = () =>
    new Promise<{ server: Server; port: number }>((ok) => {
      const server = createServer().listen(0, "127.0.0.1", () => ok({ server, port: (server.address() as { port: number }).port }));
    });

  it.each([
    ["the development IdP", (port: number) => ["node", "test/support/idp/main.mjs", "--port", String(port), "--host", "127.0.0.1"]],
    ["the echo upstream", (port: number) => [resolve(ROOT, "node_modules/.bin/bun"), "test/support/upstream.ts", String(port)]],
  ])("%s prints one line naming the port and exits 1", async (_name, command) => {
    const { server, port } = await busy();
    try {
      const r = Bun.spawnSync(command(port), { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
      expect(r.exitCode).toBe(1);
      // On Node 20, oidc-provider adds its one-line "Unsupported runtime" notice (see README).
      const lines = r.stderr
        .toString()
        .trim()
        .split("\n")
        .filter((l) => !l.startsWith("oidc-provider WARNING: Unsupported runtime"));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`port ${port} is in use`);
    } finally {
      server.close();
    }
  });
});
