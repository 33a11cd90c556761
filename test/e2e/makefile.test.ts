/**
 * The Makefile as a new user meets it: after `make build` (which `make test` runs first), an
 * unchanged tree is up to date, so `make build` and `make run` do not recompile the binary.
 */
import { describe, expect, it } from "bun:test";
import { resolve } from "node:path";

const ROOT = resolve(import.meta.dir, "../..");

describe("make", () => {
  it("reports the binary up to date after a build (make -q build exits 0)", () => {
    const r = Bun.spawnSync(["make", "-q", "build"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    expect(r.exitCode).toBe(0);
  });
});
