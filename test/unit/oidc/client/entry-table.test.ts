import { describe, expect, it } from "bun:test";
import { EntryTable } from "../../../../src/oidc/client/entry-table.ts";

const order = (t: EntryTable) => {
  const slots: number[] = [];
  for (let s = t.oldest(); s >= 0; s = t.next(s)) slots.push(s);
  return slots;
};

describe("the token cache's entry table", () => {
  it("finds every key it holds and none it does not, in LRU order, through growth, moves and removals (against a Map)", () => {
    const table = new EntryTable();
    const model = new Map<string, number>();
    let seed = 11;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return seed % n;
    };
    // Short keys collide in the buckets often; a few are too long or not Latin-1 for the key column.
    const keyOf = (i: number) => (i % 97 === 0 ? `long-${"k".repeat(60)}-${i}` : i % 89 === 0 ? `\u{1f511}${i}` : `k${i}`);
    for (let step = 0; step < 20_000; step++) {
      const key = keyOf(rand(3000));
      const slot = table.find(key);
      expect(slot).toBe(model.get(key) ?? -1);
      if (slot < 0) {
        const added = table.add(key);
        table.freshUntil[added] = step;
        model.set(key, added);
      } else if (rand(3) === 0) {
        table.remove(slot);
        model.delete(key);
      } else if (rand(2) === 0) {
        table.touch(slot);
        model.delete(key);
        model.set(key, slot);
      }
      expect(table.size).toBe(model.size);
    }
    for (const [key, slot] of model) expect(table.find(key)).toBe(slot);
    // The model's insertion order, with a touched key deleted and set again, is the LRU order.
    expect(order(table)).toEqual([...model.values()]);
  });

  it("keeps slots in least-recently-used order: added at the young end, moved there by touch", () => {
    const table = new EntryTable();
    const [a, b, c] = ["a", "b", "c"].map((k) => table.add(k)) as [number, number, number];
    expect(order(table)).toEqual([a, b, c]);
    table.touch(a);
    expect(order(table)).toEqual([b, c, a]);
    table.remove(c);
    expect(order(table)).toEqual([b, a]);
    expect(table.oldest()).toBe(b);
  });

  it("reuses a removed slot and tells a key from one that shares its bytes' prefix or length", () => {
    const table = new EntryTable();
    const slot = table.add("abc");
    table.remove(slot);
    expect(table.add("abd")).toBe(slot);
    expect(table.find("abc")).toBe(-1);
    expect(table.find("ab")).toBe(-1);
    expect(table.find("abdd")).toBe(-1);
    expect(table.find("abd")).toBe(slot);
  });

  it("forgets everything on clear", () => {
    const table = new EntryTable();
    for (let i = 0; i < 100; i++) table.add(`k${i}`);
    table.add("x".repeat(100));
    table.clear();
    expect(table.size).toBe(0);
    expect(table.oldest()).toBe(-1);
    expect(table.find("k1")).toBe(-1);
    expect(table.find("x".repeat(100))).toBe(-1);
    const again = table.add("k1");
    expect(table.find("k1")).toBe(again);
  });
});
