import { describe, expect, it } from "bun:test";
import { createKeyedHash, encodeParts, HeaderMemo } from "../../../../src/oidc/client/cache-key.ts";
import { bunRuntime } from "../../../../src/runtime/bun.ts";

describe("cache keys", () => {
  it("join parts so that shifting bytes between them gives another key", () => {
    expect(encodeParts(["ab", "c"])).not.toBe(encodeParts(["a", "bc"]));
    expect(encodeParts(["a:b", ""])).not.toBe(encodeParts(["a", "b"]));
  });

  it("are the same for the same parts under the same salt (several gateways can share a cache)", async () => {
    const a = await createKeyedHash("a salt of sixteen or more");
    const b = await createKeyedHash("a salt of sixteen or more");
    expect(await a(["issuer", "service", "secret"])).toBe(await b(["issuer", "service", "secret"]));
  });

  it("differ for another secret, and under another salt", async () => {
    const a = await createKeyedHash("a salt of sixteen or more");
    const other = await createKeyedHash("another salt, also long enough");
    const key = await a(["issuer", "service", "secret"]);
    expect(await a(["issuer", "service", "secret2"])).not.toBe(key);
    expect(await other(["issuer", "service", "secret"])).not.toBe(key);
  });

  it("never contain the secret, and are random per process without a salt", async () => {
    const a = await createKeyedHash();
    const b = await createKeyedHash();
    const key = await a(["issuer", "service", "cf4c655a-0622-4ce6-a0de-d3353ef0b714"]);
    expect(key).not.toContain("cf4c655a");
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await b(["issuer", "service", "cf4c655a-0622-4ce6-a0de-d3353ef0b714"])).not.toBe(key);
  });

  it("are the same whether WebCrypto or the runtime's synchronous HMAC computes them", async () => {
    const web = await createKeyedHash("a salt of sixteen or more");
    const sync = await createKeyedHash("a salt of sixteen or more", bunRuntime.hmacSha256);
    for (const parts of [["a"], ["issuer", "service", "sécret"], ["", "", ""]]) expect(await sync(parts)).toBe(await web(parts));
  });
});

describe("the memo of credentials headers", () => {
  const header = `Basic ${btoa("client:cf4c655a-0622-4ce6-a0de-d3353ef0b714")}`;
  const hmac = bunRuntime.hmacSha256!;

  it("is keyed by a keyed hash of the exact header, which never contains it", () => {
    const memo = new HeaderMemo<string>(hmac, 8);
    const key = memo.key(header);
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(key).not.toContain(header.slice(6, 20));
    expect(memo.key(header)).toBe(key);
    expect(memo.key(`basic ${header.slice(6)}`)).not.toBe(key);
    expect(memo.key(`${header} `)).not.toBe(key);
  });

  it("has a key of its own: two memos never share keys, nor with the cache keys", async () => {
    const a = new HeaderMemo<string>(hmac, 8);
    const b = new HeaderMemo<string>(hmac, 8);
    expect(a.key(header)).not.toBe(b.key(header));
    expect(a.key(header)).not.toBe(await (await createKeyedHash(undefined, hmac))([header]));
  });

  it("is bounded: past its size the oldest value goes first", () => {
    const memo = new HeaderMemo<number>(hmac, 3);
    for (let i = 0; i < 5; i++) memo.set(memo.key(`Bearer t${i}`), i);
    expect(memo.size).toBe(3);
    expect(memo.get(memo.key("Bearer t0"))).toBeUndefined();
    expect(memo.get(memo.key("Bearer t1"))).toBeUndefined();
    expect(memo.get(memo.key("Bearer t4"))).toBe(4);
  });
});
