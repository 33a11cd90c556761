import { describe, expect, it } from "bun:test";
import { downstreamResponseHeaders, headerPolicy, normalizeHeaderName, requestIdFrom, upstreamRequestHeaders } from "../../../src/gateway/headers.ts";
import { normalizePath, splitTarget } from "../../../src/gateway/path.ts";

const facts = { remoteAddress: "10.0.0.7", protocol: "https" as const, host: "gw.test:8443", port: 8443, path: "/api", requestId: "rid-1" };

describe("headers sent upstream", () => {
  it("overwrites X-Forwarded-* with what the gateway saw", () => {
    const h = upstreamRequestHeaders(
      new Headers({ "x-forwarded-for": "6.6.6.6", "x-forwarded-proto": "http", "x-forwarded-host": "evil", "x-forwarded-anything": "x" }),
      facts,
    );
    expect(h.get("x-forwarded-for")).toBe("10.0.0.7");
    expect(h.get("x-forwarded-proto")).toBe("https");
    expect(h.get("x-forwarded-host")).toBe("gw.test");
    expect(h.get("x-forwarded-port")).toBe("8443");
    expect(h.get("x-forwarded-path")).toBe("/api");
    expect(h.get("x-forwarded-anything")).toBeNull();
  });

  it("drops hop-by-hop headers and every header named in Connection", () => {
    const h = upstreamRequestHeaders(
      new Headers({
        connection: "close, X-Secret-Hop",
        "x-secret-hop": "1",
        "keep-alive": "timeout=5",
        te: "trailers",
        upgrade: "h2c",
        "proxy-authorization": "Basic x",
        accept: "*/*",
      }),
      facts,
    );
    for (const n of ["connection", "x-secret-hop", "keep-alive", "te", "upgrade", "proxy-authorization"]) expect(h.get(n)).toBeNull();
    expect(h.get("accept")).toBe("*/*");
  });

  it("never passes a caller's client certificate headers", () => {
    const h = upstreamRequestHeaders(new Headers({ "client-cert": ":abc:", "x-forwarded-client-cert": "Hash=1", forwarded: "for=1.2.3.4" }), facts);
    expect(h.get("client-cert")).toBeNull();
    expect(h.get("x-forwarded-client-cert")).toBeNull();
    expect(h.get("forwarded")).toBeNull();
  });

  it("never passes headers upstreams trust as set by a proxy: client addresses, certificate verdicts, URL and method rewrites", () => {
    const spoofed = [
      "true-client-ip",
      "x-client-ip",
      "cf-connecting-ip",
      "x-cluster-client-ip",
      "x-original-forwarded-for",
      "x-ssl-client-verify",
      "x-ssl-client-s-dn",
      "x-original-url",
      "x-rewrite-url",
      "x-http-method-override",
    ];
    const h = upstreamRequestHeaders(new Headers(spoofed.map((n) => [n, "spoofed"])), facts);
    for (const n of spoofed) expect(h.get(n)).toBeNull();
  });

  it("reads header names as CGI, WSGI and PHP do: case, '_' and '.' fold into '-'", () => {
    expect(normalizeHeaderName("X_Authenticated.User")).toBe("x-authenticated-user");
  });

  it("drops caller names with '_' unless underscores_in_headers allows them", () => {
    const incoming = new Headers({ x_custom: "1", "x-custom": "2" });
    expect(upstreamRequestHeaders(incoming, facts).get("x_custom")).toBeNull();
    expect(upstreamRequestHeaders(incoming, facts, headerPolicy(true)).get("x_custom")).toBe("1");
  });

  it("drops every spelling of a header the route's plugins own, and of the identity headers, even with underscores allowed", () => {
    const incoming = new Headers({
      "x.user.email": "a",
      x_user_email: "b",
      "X-User-Email": "c",
      x_real_ip: "d",
      "ssl.client.cert": "e",
      remote_user: "f",
      "x-other": "g",
    });
    const h = upstreamRequestHeaders(incoming, facts, headerPolicy(true, ["X-User-Email"]));
    expect([...h.keys()].filter((k) => !k.startsWith("x-forwarded-") && k !== "x-real-ip" && k !== "x-request-id")).toEqual(["x-other"]);
    expect(h.get("x-real-ip")).toBe("10.0.0.7");
  });

  it("does not send the caller's Host (the proxy sets the upstream's)", () => {
    expect(upstreamRequestHeaders(new Headers({ host: "gw.test" }), facts).get("host")).toBeNull();
  });
});

describe("headers sent back to the caller", () => {
  it("drops the upstream's hop-by-hop headers and keeps cookies apart", () => {
    const up = new Headers({ connection: "x-private", "x-private": "1", "transfer-encoding": "chunked", "x-kept": "yes" });
    up.append("set-cookie", "a=1");
    up.append("set-cookie", "b=2");
    const h = downstreamResponseHeaders(up);
    expect(h.get("x-private")).toBeNull();
    expect(h.get("transfer-encoding")).toBeNull();
    expect(h.get("x-kept")).toBe("yes");
    expect(h.getSetCookie()).toEqual(["a=1", "b=2"]);
  });
});

describe("request ids", () => {
  it("keeps a sane caller id and replaces a hostile one", () => {
    expect(requestIdFrom(new Headers({ "x-request-id": "abc-123" }))).toBe("abc-123");
    expect(requestIdFrom(new Headers({ "x-request-id": "a b\u0001" }))).toMatch(/^[0-9a-f-]{36}$/);
    expect(requestIdFrom(new Headers())).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("path normalisation before routing", () => {
  it.each([
    ["/a/b", "/a/b"],
    ["/public/../admin", "/admin"],
    ["/a/./b", "/a/b"],
    ["//admin//x", "/admin/x"],
    ["/%61dmin", "/admin"],
    ["/a/..", "/"],
    ["/a/b/", "/a/b/"],
    ["/a;x/b", "/a;x/b"],
  ])("%p -> %p", (input, expected) => expect(normalizePath(input)).toBe(expected));

  it.each(["/public/..%2fadmin", "/public%2f..%2fadmin", "/public/..%5cadmin", "/%2fadmin", "/a%2Fb", "/public/%2e%2e%2fadmin"])(
    "refuses %p by default (escaped_slashes = reject)",
    (input) => expect(normalizePath(input)).toBeUndefined(),
  );

  it("keeps or unescapes escaped slashes when configured", () => {
    expect(normalizePath("/a%2fb", "keep")).toBe("/a%2Fb");
    expect(normalizePath("/public/..%2fadmin", "keep")).toBe("/public/..%2Fadmin");
    expect(normalizePath("/public/..%2fadmin", "unescape")).toBe("/admin");
    expect(normalizePath("/a%5Cb", "unescape")).toBe("/a/b");
  });

  it.each(["/public/..;/admin", "/public/.;x/admin", "/public/..;jsessionid=1/admin", "/public/%2e%2e;/admin", "/public/..%3B/admin"])(
    "refuses a dot segment with parameters: %p",
    (input) => {
      for (const mode of ["reject", "keep", "unescape"] as const) expect(normalizePath(input, mode)).toBeUndefined();
    },
  );

  it("splits path and query without a URL object", () => {
    expect(splitTarget("http://h:1/a/b?x=1&y=2")).toEqual({ path: "/a/b", search: "?x=1&y=2" });
    expect(splitTarget("http://h:1")).toEqual({ path: "/", search: "" });
  });
});
