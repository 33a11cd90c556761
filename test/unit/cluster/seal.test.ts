/** Sealed values in Redis: only the holder of the shared secret opens them, and only under their own key. */
import { describe, expect, it } from "bun:test";
import { createSealer } from "../../../src/cluster/seal.ts";

const SECRET = "the-cache-tokens-salt-of-the-fleet";

describe("sealed shared values", () => {
  it("open with the same secret and purpose on another node", async () => {
    const a = await createSealer(SECRET, "tokens client_credentials");
    const b = await createSealer(SECRET, "tokens client_credentials");
    const sealed = await a.seal('{"token":"eyJ.x.y"}', "k1");
    expect(await b.open(sealed, "k1")).toBe('{"token":"eyJ.x.y"}');
  });

  it("hide the plaintext and use a fresh IV each time", async () => {
    const a = await createSealer(SECRET, "p");
    const one = await a.seal("eyJhbGciOi", "k");
    const two = await a.seal("eyJhbGciOi", "k");
    expect(new TextDecoder().decode(one)).not.toContain("eyJ");
    expect(Buffer.from(one).equals(Buffer.from(two))).toBe(false);
  });

  it("do not open under another key, another secret, another purpose, or after tampering", async () => {
    const a = await createSealer(SECRET, "p");
    const sealed = await a.seal("value", "k");
    expect(await a.open(sealed, "other-key")).toBeUndefined();
    expect(await (await createSealer("another-secret-0123456789", "p")).open(sealed, "k")).toBeUndefined();
    expect(await (await createSealer(SECRET, "q")).open(sealed, "k")).toBeUndefined();
    const tampered = sealed.slice();
    tampered[tampered.length - 1]! ^= 1;
    expect(await a.open(tampered, "k")).toBeUndefined();
    expect(await a.open(new Uint8Array([1, 2, 3]), "k")).toBeUndefined();
  });
});
