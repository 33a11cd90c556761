import { describe, expect, it } from "bun:test";
import { StringSlab } from "../../../src/lib/string-slab.ts";

const b64u = (s: string | Uint8Array) => Buffer.from(s).toString("base64url");
const header = b64u(JSON.stringify({ alg: "RS256", typ: "JWT", kid: "k1" }));
const jwt = (sub: string, signatureBytes = 256) =>
  `${header}.${b64u(JSON.stringify({ sub, iss: "https://idp.example", exp: 2_000_000_000 }))}.${b64u(crypto.getRandomValues(new Uint8Array(signatureBytes)))}`;

describe("a string slab", () => {
  it("gives back a JWT exactly, holding its payload and signature as decoded bytes", () => {
    const slab = new StringSlab();
    const tokens = Array.from({ length: 500 }, (_, i) => jwt(`user-${i}`));
    const refs = tokens.map((t) => slab.put(t));
    expect(refs.every((r) => r >= 0)).toBe(true);
    expect(refs.map((r) => slab.get(r))).toEqual(tokens);
    expect(slab.size).toBe(500);
    // Less than the tokens' own length: the header is shared, the rest ¾ of its text.
    const text = tokens.reduce((n, t) => n + t.length, 0);
    expect(slab.reservedBytes).toBeLessThan(text);
  });

  it("keeps a JWS whose base64url does not round-trip as its exact text", () => {
    const slab = new StringSlab();
    for (const odd of [`${header}.AB.AB`, `${header}.eyJ9.x`, "a.b.c", "A-_.A-_.A-_"]) expect(slab.get(slab.put(odd))).toBe(odd);
  });

  it("keeps opaque ASCII tokens and refuses what is not ASCII", () => {
    const slab = new StringSlab();
    for (const opaque of ["", "opaque-token", "2YotnFZFEjr1zCsicMWpAA", "a b~c!", "x".repeat(70_000)])
      expect(slab.get(slab.put(opaque))).toBe(opaque);
    expect(slab.put("caf\u00e9")).toBe(-1);
    expect(slab.put("\u{1f600}")).toBe(-1);
  });

  it("reuses a freed slot for the next string of its size", () => {
    const slab = new StringSlab();
    const a = slab.put(jwt("a"));
    const reserved = slab.reservedBytes;
    slab.free(a);
    expect(slab.size).toBe(0);
    const b = slab.put(jwt("b"));
    expect(b).toBe(a);
    expect(slab.get(b)).toContain(b64u(JSON.stringify({ sub: "b", iss: "https://idp.example", exp: 2_000_000_000 })));
    expect(slab.reservedBytes).toBe(reserved);
  });

  it("stays exact with more distinct JWS headers than it remembers", () => {
    const slab = new StringSlab();
    const tokens = Array.from({ length: 300 }, (_, i) => `${b64u(JSON.stringify({ alg: "RS256", kid: `k${i}` }))}.${b64u("{}")}.${b64u("sig")}`);
    const refs = tokens.map((t) => slab.put(t));
    expect(refs.map((r) => slab.get(r))).toEqual(tokens);
  });

  it("keeps an ASCII tail beside a string, and refuses a tail that is not ASCII", () => {
    const slab = new StringSlab();
    const token = jwt("a");
    const [withTail, empty, without] = [slab.put(token, '{"sub":"a"}'), slab.put("opaque", ""), slab.put(token)];
    expect([slab.get(withTail), slab.tail(withTail)]).toEqual([token, '{"sub":"a"}']);
    expect([slab.get(empty), slab.tail(empty)]).toEqual(["opaque", ""]);
    expect([slab.get(without), slab.tail(without)]).toEqual([token, undefined]);
    expect(slab.put(token, "caf\u00e9")).toBe(-1);
  });

  it("forgets everything on clear", () => {
    const slab = new StringSlab();
    slab.put(jwt("a"));
    slab.clear();
    expect(slab.size).toBe(0);
    expect(slab.reservedBytes).toBe(0);
    expect(slab.get(slab.put("again"))).toBe("again");
  });
});

describe("a string slab's JWT payloads", () => {
  it("stores one issuer's tokens as their difference from the first payload it saw, and gives each back exactly", () => {
    const slab = new StringSlab();
    const claims = (i: number) => ({
      iss: "https://idp.example/realms/a",
      azp: `client-${i}`,
      scope: "profile email",
      realm_access: { roles: ["default-roles-a", "offline_access", "uma_authorization"] },
      resource_access: { account: { roles: ["manage-account", "manage-account-links", "view-profile"] } },
      sub: crypto.randomUUID(),
      jti: crypto.randomUUID(),
      exp: 2_000_000_000 + i,
    });
    const tokens = Array.from(
      { length: 5000 },
      (_, i) => `${header}.${b64u(JSON.stringify(claims(i)))}.${b64u(crypto.getRandomValues(new Uint8Array(64)))}`,
    );
    const refs = tokens.map((t) => slab.put(t));
    expect(refs.map((r) => slab.get(r))).toEqual(tokens);
    const plain = tokens.reduce((n, t) => n + (t.length - header.length) * 0.75, 0);
    expect(slab.reservedBytes).toBeLessThan(plain * 0.6);
  });

  it("keeps a payload unlike the first one as its decoded bytes", () => {
    const slab = new StringSlab();
    const first = jwt("first");
    const other = `${header}.${b64u(crypto.getRandomValues(new Uint8Array(400)))}.${b64u("sig")}`;
    const refs = [slab.put(first), slab.put(other)];
    expect(refs.map((r) => slab.get(r))).toEqual([first, other]);
  });
});
