import { describe, expect, it } from "bun:test";
import { uriCapture } from "../../../../src/gateway/router/captures.ts";

describe("a route's uri captures (Kong's uri_captures)", () => {
  const paths = ["/plain", "~/users/(?<user>[a-z]+)/(\\d+)", "~/teams/(?<user>[a-z]+)"];

  it("gives a named group of the first regex path that matches, anchored at the path's start", () => {
    expect(uriCapture(paths, "/users/alice/42/x", "user")).toBe("alice");
    expect(uriCapture(paths, "/teams/blue", "user")).toBe("blue");
    expect(uriCapture(paths, "/x/users/alice/42", "user")).toBeUndefined();
  });

  it("gives a group by its number", () => {
    expect(uriCapture(paths, "/users/alice/42", "2")).toBe("42");
  });

  it("gives nothing for a route without regex paths or a group that is not there", () => {
    expect(uriCapture(["/plain"], "/plain", "user")).toBeUndefined();
    expect(uriCapture(paths, "/users/alice/42", "nope")).toBeUndefined();
  });
});
