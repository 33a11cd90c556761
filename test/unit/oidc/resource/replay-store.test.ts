import { describe, expect, it } from "bun:test";
import { createMemoryReplayStore, replayKey } from "../../../../src/oidc/resource/replay-store.ts";

describe("the in-memory replay store", () => {
  it("accepts a key once while it is live", () => {
    const store = createMemoryReplayStore();
    expect(store.checkAndRecord("k", 2000, 1000)).toBe(true);
    expect(store.checkAndRecord("k", 2000, 1500)).toBe(false);
  });

  it("forgets a key once it has expired", () => {
    const store = createMemoryReplayStore();
    store.checkAndRecord("k", 2000, 1000);
    expect(store.checkAndRecord("k", 4000, 2000)).toBe(true);
    expect(store.size).toBe(1);
  });

  it("sweeps expired entries as new ones arrive", () => {
    const store = createMemoryReplayStore();
    for (let i = 0; i < 100; i++) store.checkAndRecord(`k${i}`, 2000, 1000);
    store.checkAndRecord("new", 9000, 3000);
    expect(store.size).toBe(1);
  });

  it("is bounded, and refuses proofs no newer than one it had to drop", () => {
    const store = createMemoryReplayStore({ maxEntries: 3 });
    expect(store.checkAndRecord("a", 5000, 0)).toBe(true);
    expect(store.checkAndRecord("b", 6000, 0)).toBe(true);
    expect(store.checkAndRecord("c", 7000, 0)).toBe(true);
    expect(store.checkAndRecord("d", 8000, 0)).toBe(true); // drops "a"
    expect(store.size).toBe(3);
    expect(store.evictions).toBe(1);
    // "a" can no longer be told apart from a new proof: refused, not let through.
    expect(store.checkAndRecord("a", 5000, 0)).toBe(false);
    // Fresh proofs still pass.
    expect(store.checkAndRecord("e", 9000, 0)).toBe(true);
  });

  it("refuses a size below one", () => {
    expect(() => createMemoryReplayStore({ maxEntries: 0 })).toThrow();
  });
});

describe("replay keys", () => {
  it("are a fixed-length hash, not the jti", async () => {
    const key = await replayKey("thumbprint", "my-secret-looking-jti");
    expect(key).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(key).not.toContain("jti");
  });

  it("do not collide by moving characters between thumbprint and jti", async () => {
    expect(await replayKey("ab", "c")).not.toBe(await replayKey("a", "bc"));
  });
});
