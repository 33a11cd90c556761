import { describe, expect, it } from "bun:test";
import { createDpopNonces, timingSafeEqual } from "../../../../src/oidc/resource/dpop-nonce.ts";

const SECRET = "a shared secret of at least 32 bytes";
const T = Date.UTC(2030, 0, 1, 12, 0, 30); // 30 s into a 60 s slot

describe("stateless DPoP nonces", () => {
  it("stay the same within a slot and change with the slot", async () => {
    const n = await createDpopNonces({ secret: SECRET });
    expect(await n.current(T)).toBe(await n.current(T + 20_000));
    expect(await n.current(T)).not.toBe(await n.current(T + 60_000));
  });

  it("are accepted in the current and the previous slot, and not later", async () => {
    const n = await createDpopNonces({ secret: SECRET });
    const nonce = await n.current(T);
    expect(await n.verify(nonce, T)).toBe(true);
    expect(await n.verify(nonce, T + 60_000)).toBe(true);
    expect(await n.verify(nonce, T + 120_000)).toBe(false);
  });

  it("are accepted a few seconds early, for a gateway whose clock is behind", async () => {
    const n = await createDpopNonces({ secret: SECRET, skewSeconds: 5 });
    const next = await n.current(T + 60_000);
    expect(await n.verify(next, T + 27_000)).toBe(true); // 3 s before the slot edge
    expect(await n.verify(next, T)).toBe(false); // 30 s before
  });

  it("agree between gateways that share the secret, and not otherwise", async () => {
    const a = await createDpopNonces({ secret: SECRET });
    const b = await createDpopNonces({ secret: new TextEncoder().encode(SECRET) });
    const c = await createDpopNonces({ secret: "another shared secret, 32 bytes long" });
    expect(await b.verify(await a.current(T), T)).toBe(true);
    expect(await c.verify(await a.current(T), T)).toBe(false);
  });

  it("refuse garbage", async () => {
    const n = await createDpopNonces({ secret: SECRET });
    for (const bad of ["", "x", (await n.current(T)).slice(1), `${await n.current(T)}x`]) expect(await n.verify(bad, T)).toBe(false);
  });

  it("need a secret of at least 32 bytes", async () => {
    await expect(createDpopNonces({ secret: "short" })).rejects.toThrow("32 bytes");
  });
});

describe("timingSafeEqual", () => {
  it("compares strings", () => {
    expect(timingSafeEqual("abc", "abc")).toBe(true);
    expect(timingSafeEqual("abc", "abd")).toBe(false);
    expect(timingSafeEqual("abc", "ab")).toBe(false);
  });
});
