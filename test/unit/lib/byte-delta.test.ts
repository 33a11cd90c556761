import { describe, expect, it } from "bun:test";
import { ByteDelta, maxEncodedLength } from "../../../src/lib/byte-delta.ts";

const text = (s: string) => new TextEncoder().encode(s);

function roundTrip(delta: ByteDelta, input: Uint8Array): { encoded: number; back: Uint8Array } {
  const out = new Uint8Array(maxEncodedLength(input.length));
  const encoded = delta.encode(input, out);
  expect(encoded).toBeLessThanOrEqual(maxEncodedLength(input.length));
  const back = new Uint8Array(input.length);
  expect(delta.decode(out.subarray(0, encoded), back)).toBe(input.length);
  return { encoded, back };
}

describe("a byte delta", () => {
  it("stores a payload that differs from its dictionary in a few ids in a fraction of its length", () => {
    const claims = (id: string) =>
      JSON.stringify({ iss: "https://idp.example/realms/a", azp: id, scope: "profile email", sub: crypto.randomUUID(), iat: 1_764_930_000 });
    const delta = new ByteDelta(text(claims("client-1")));
    const input = text(claims("client-2"));
    const { encoded, back } = roundTrip(delta, input);
    expect(back).toEqual(input);
    expect(encoded).toBeLessThan(input.length / 2);
  });

  it("gives back exactly what it was given, for random bytes against random and related dictionaries", () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return seed % n;
    };
    for (let round = 0; round < 300; round++) {
      // A small alphabet makes matches of every length, overlapping runs and copies over MAX_COPY likely.
      const alphabet = 1 + rand(round % 3 === 0 ? 256 : 4);
      const dict = Uint8Array.from({ length: rand(600) }, () => rand(alphabet));
      const input = Uint8Array.from({ length: rand(900) }, (_, i) => (rand(3) === 0 || i >= dict.length ? rand(alphabet) : dict[i]!));
      expect(roundTrip(new ByteDelta(dict), input).back).toEqual(input);
    }
  });

  it("handles an empty dictionary and an empty input", () => {
    const delta = new ByteDelta(new Uint8Array(0));
    expect(roundTrip(delta, text("no dictionary at all")).back).toEqual(text("no dictionary at all"));
    expect(roundTrip(new ByteDelta(text("abcdefgh")), new Uint8Array(0)).encoded).toBe(0);
  });

  it("copies long runs in pieces and uses only the start of a very long dictionary", () => {
    const long = text("x".repeat(10_000));
    const delta = new ByteDelta(long);
    const { encoded, back } = roundTrip(delta, long);
    expect(back).toEqual(long);
    expect(encoded).toBeLessThan(long.length / 4);
  });
});
