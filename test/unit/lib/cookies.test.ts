import { describe, expect, it } from "bun:test";
import { cookieValues, withoutCookie } from "../../../src/lib/cookies.ts";

describe("a Cookie header's pairs", () => {
  it("gives every value of a name in order, trimmed, and none for an absent header or name", () => {
    expect(cookieValues("a=1; token=x.y ;b=2; token=z", "token")).toEqual(["x.y", "z"]);
    expect(cookieValues("a=1; b", "token")).toEqual([]);
    expect(cookieValues(null, "token")).toEqual([]);
    expect(cookieValues("tok=1", "token")).toEqual([]);
  });

  it("removes every pair of a name and keeps the rest as sent", () => {
    expect(withoutCookie("a=1; token=x;b=2 ; token=y", "token")).toBe("a=1; b=2");
    expect(withoutCookie("token=x", "token")).toBe("");
    expect(withoutCookie("flag; a=1", "token")).toBe("flag; a=1");
  });
});
