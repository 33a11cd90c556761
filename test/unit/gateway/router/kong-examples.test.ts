/**
 * The examples of Kong's proxy reference ("Routes and matching capabilities", "Matching
 * priorities"), one by one, as Kong's default router (`traditional_compatible`) answers them.
 */
import { describe, expect, it } from "bun:test";
import { routerOf, winner } from "../../../support/routes.ts";

describe("Kong: a request must match every configured field", () => {
  const router = routerOf([{ name: "r", hosts: ["example.com", "foo-service.com"], paths: ["/foo", "/bar"], methods: ["GET"] }]);

  it.each([
    ["GET", "/foo", "example.com"],
    ["GET", "/bar", "foo-service.com"],
    ["GET", "/foo/hello/world", "example.com"],
  ])("%s %s with Host %s matches", (method, path, host) => {
    expect(winner(router, path, { method, host })).toBe("r");
  });

  it.each([
    ["GET", "/", "example.com", "the path"],
    ["POST", "/foo", "example.com", "the method"],
    ["GET", "/foo", "foo.com", "the host"],
  ])("%s %s with Host %s does not (%s)", (method, path, host) => {
    expect(winner(router, path, { method, host })).toBeUndefined();
  });
});

describe("Kong: hosts", () => {
  it("matches any of several hosts", () => {
    const router = routerOf([{ name: "r", hosts: ["example.com", "foo-service.com"] }]);
    expect(winner(router, "/", { host: "example.com" })).toBe("r");
    expect(winner(router, "/", { host: "foo-service.com" })).toBe("r");
    expect(winner(router, "/", { host: "other.com" })).toBeUndefined();
  });

  it("matches a leftmost wildcard on any subdomain depth, not the bare domain", () => {
    const router = routerOf([{ name: "r", hosts: ["*.example.com"] }]);
    expect(winner(router, "/", { host: "a.example.com" })).toBe("r");
    expect(winner(router, "/", { host: "x.y.example.com" })).toBe("r");
    expect(winner(router, "/", { host: "example.com" })).toBeUndefined();
  });

  it("matches a rightmost wildcard on any top-level domain", () => {
    const router = routerOf([{ name: "r", hosts: ["example.*"] }]);
    expect(winner(router, "/", { host: "example.com" })).toBe("r");
    expect(winner(router, "/", { host: "example.org" })).toBe("r");
    expect(winner(router, "/", { host: "www.example.com" })).toBeUndefined();
  });

  it("compares host names case-insensitively and ignores the Host header's port", () => {
    const router = routerOf([{ name: "r", hosts: ["Example.com"] }]);
    expect(winner(router, "/", { host: "EXAMPLE.com:8000" })).toBe("r");
  });

  it("with a port, matches the Host header's port, or the listener's port when the header has none", () => {
    const router = routerOf([{ name: "r", hosts: ["example.com:8000"] }]);
    expect(winner(router, "/", { host: "example.com:8000", localPort: 9000 })).toBe("r");
    expect(winner(router, "/", { host: "example.com", localPort: 8000 })).toBe("r");
    expect(winner(router, "/", { host: "example.com:9000", localPort: 8000 })).toBeUndefined();
  });
});

describe("Kong: headers", () => {
  const router = routerOf([{ name: "r", headers: { version: ["v1", "v2"] } }]);

  it("matches any of the header's values, case-insensitively", () => {
    expect(winner(router, "/", { headers: { version: "v1" } })).toBe("r");
    expect(winner(router, "/", { headers: { version: "V2" } })).toBe("r");
  });

  it("does not match another value or a missing header", () => {
    expect(winner(router, "/", { headers: { version: "v3" } })).toBeUndefined();
    expect(winner(router, "/")).toBeUndefined();
  });

  it("matches a value of a repeated header", () => {
    const h = new Headers();
    h.append("version", "v9");
    h.append("version", "v2");
    expect(winner(router, "/", { headers: Object.fromEntries([["version", h.get("version")!]]) })).toBe("r");
  });

  it("treats a value starting with ~* as a case-insensitive regex", () => {
    const re = routerOf([{ name: "r", headers: { "x-version": ["~*^v\\d+$"] } }]);
    expect(winner(re, "/", { headers: { "X-Version": "V12" } })).toBe("r");
    expect(winner(re, "/", { headers: { "x-version": "beta" } })).toBeUndefined();
  });

  it("needs every named header", () => {
    const both = routerOf([{ name: "r", headers: { a: ["1"], b: ["2"] } }]);
    expect(winner(both, "/", { headers: { a: "1", b: "2" } })).toBe("r");
    expect(winner(both, "/", { headers: { a: "1" } })).toBeUndefined();
  });
});

describe("Kong: paths", () => {
  const router = routerOf([{ name: "r", paths: ["/service", "/hello/world"] }]);

  it.each(["/service", "/service/resource", "/hello/world/resource"])("prefix paths match %s", (path) => {
    expect(winner(router, path)).toBe("r");
  });

  it("prefix matching is a plain string prefix: /service also matches /services", () => {
    expect(winner(router, "/services")).toBe("r");
    expect(winner(router, "/hello")).toBeUndefined();
  });

  it("regex paths start with ~ and match from the path's start", () => {
    const re = routerOf([{ name: "r", paths: ["~/users/\\d+/profile", "/following"] }]);
    expect(winner(re, "/following")).toBe("r");
    expect(winner(re, "/users/123/profile")).toBe("r");
    expect(winner(re, "/x/users/123/profile")).toBeUndefined();
  });

  it("evaluates regex paths by regex_priority, then prefix paths longest first", () => {
    // Kong's "evaluation order" example.
    const order = routerOf([
      { name: "status", paths: ["~/status/\\d+"], regex_priority: 0 },
      { name: "version-status", paths: ["~/version/\\d+/status/\\d+"], regex_priority: 6 },
      { name: "version", paths: ["/version"] },
      { name: "version-any", paths: ["/version/any/"] },
    ]);
    expect(winner(order, "/version/1/status/2")).toBe("version-status");
    expect(winner(order, "/status/42")).toBe("status");
    expect(winner(order, "/version/any/thing")).toBe("version-any");
    expect(winner(order, "/version/2")).toBe("version");
  });

  it("a higher regex_priority wins between two matching regexes, else the older route", () => {
    const two = routerOf([
      { name: "first", paths: ["~/a/\\d+"] },
      { name: "second", paths: ["~/a/[0-9]+"] },
      { name: "high", paths: ["~/a/7"], regex_priority: 1 },
    ]);
    expect(winner(two, "/a/7")).toBe("high");
    expect(winner(two, "/a/8")).toBe("first");
  });
});

describe("Kong: methods", () => {
  const router = routerOf([{ name: "r", methods: ["GET", "HEAD"] }]);
  it.each([
    ["GET", "r"],
    ["HEAD", "r"],
    ["POST", undefined],
    ["PUT", undefined],
  ])("%s -> %p", (method, expected) => {
    expect(winner(router, "/", { method })).toBe(expected);
  });
});

describe("Kong: matching priorities", () => {
  it("the route with more attributes is evaluated first (hosts vs hosts + methods)", () => {
    const router = routerOf([
      { name: "hosts", hosts: ["example.com"] },
      { name: "hosts-methods", hosts: ["example.com"], methods: ["POST"] },
    ]);
    expect(winner(router, "/", { host: "example.com" })).toBe("hosts");
    expect(winner(router, "/", { host: "example.com", method: "POST" })).toBe("hosts-methods");
  });

  it("a route with hosts, methods and paths is evaluated before both", () => {
    const router = routerOf([
      { name: "hosts", hosts: ["example.com"] },
      { name: "hosts-methods", hosts: ["example.com"], methods: ["POST"] },
      { name: "all-three", hosts: ["example.com"], methods: ["POST"], paths: ["/x"] },
    ]);
    expect(winner(router, "/x", { host: "example.com", method: "POST" })).toBe("all-three");
    expect(winner(router, "/y", { host: "example.com", method: "POST" })).toBe("hosts-methods");
  });

  it("a host route is not shadowed by a catch-all path route (issue 13, item 5)", () => {
    const router = routerOf([
      { name: "any", paths: ["/"] },
      { name: "int", hosts: ["internal.example"] },
    ]);
    expect(winner(router, "/anything", { host: "internal.example" })).toBe("int");
    expect(winner(router, "/anything", { host: "public.example" })).toBe("any");
  });

  it("more attributes win before a longer path: hosts + /a beats /a/b/c", () => {
    const router = routerOf([
      { name: "long", paths: ["/a/b/c"] },
      { name: "host-short", paths: ["/a"], hosts: ["example.com"] },
    ]);
    expect(winner(router, "/a/b/c", { host: "example.com" })).toBe("host-short");
  });

  describe("tie-breakers at the same number of attributes", () => {
    it("1. only plain hosts beat wildcard hosts", () => {
      const router = routerOf([
        { name: "wild", hosts: ["*.example.com"], paths: ["/long/path"] },
        { name: "plain", hosts: ["api.example.com"], paths: ["/"] },
      ]);
      expect(winner(router, "/long/path", { host: "api.example.com" })).toBe("plain");
    });

    it("2. more headers beat fewer", () => {
      const router = routerOf([
        { name: "one", headers: { a: ["1"] }, paths: ["/long/path"] },
        { name: "two", headers: { a: ["1"], b: ["2"] }, paths: ["/"] },
      ]);
      expect(winner(router, "/long/path", { headers: { a: "1", b: "2" } })).toBe("two");
    });

    it("3. a regex path beats a prefix path", () => {
      const router = routerOf([
        { name: "prefix", paths: ["/users/1234567890"] },
        { name: "regex", paths: ["~/users/\\d"] },
      ]);
      expect(winner(router, "/users/1234567890")).toBe("regex");
    });

    it("4. the longer prefix wins", () => {
      const router = routerOf([
        { name: "short", paths: ["/a"] },
        { name: "long", paths: ["/a/b"] },
      ]);
      expect(winner(router, "/a/b/c")).toBe("long");
      expect(winner(router, "/a/c")).toBe("short");
    });

    it("5. the older route (first in the file) wins", () => {
      const router = routerOf([
        { name: "first", paths: ["/x"], methods: ["GET"] },
        { name: "second", paths: ["/x"], hosts: ["gw.test"] },
      ]);
      // plain hosts put "second" first despite the file order: rule 1 before rule 5.
      expect(winner(router, "/x")).toBe("second");
      const twins = routerOf([
        { name: "first", paths: ["/x"] },
        { name: "second", paths: ["/x"] },
      ]);
      expect(winner(twins, "/x")).toBe("first");
    });
  });

  it("compares the matched path's length, not the route's longest path (Kong splits routes by path length)", () => {
    const router = routerOf([
      { name: "many", paths: ["/a", "/zzzzzzzzzz"] },
      { name: "mid", paths: ["/a/b"] },
    ]);
    expect(winner(router, "/a/b/c")).toBe("mid");
    expect(winner(router, "/zzzzzzzzzz/a/b")).toBe("many");
  });
});

describe("Kong: strip_path", () => {
  it("removes the matched prefix", () => {
    const router = routerOf([{ paths: ["/service"] }]);
    expect(router.match({ method: "GET", host: "h", path: "/service/path/to/resource", protocol: "http" })?.strippedPath).toBe("/path/to/resource");
  });

  it("removes the whole regex match", () => {
    const router = routerOf([{ paths: ["~/version/\\d+/service"] }]);
    expect(router.match({ method: "GET", host: "h", path: "/version/1/service/path/to/resource", protocol: "http" })?.strippedPath).toBe(
      "/path/to/resource",
    );
  });
});

describe("Kong: snis, sources and destinations", () => {
  it("snis match the TLS server name, and are ignored on plain HTTP", () => {
    const router = routerOf([{ name: "r", snis: ["api.example.com"], paths: ["/"] }]);
    expect(winner(router, "/", { tls: true, sni: "api.example.com" })).toBe("r");
    expect(winner(router, "/", { tls: true, sni: "other.example.com" })).toBeUndefined();
    expect(winner(router, "/", { tls: true })).toBeUndefined();
    expect(winner(router, "/")).toBe("r");
  });

  it("sources match the client's address by CIDR and its port", () => {
    const router = routerOf([
      { name: "lan", sources: [{ ip: "10.0.0.0/8" }, { ip: "127.0.0.1", port: 4242 }] },
      { name: "v6", sources: [{ ip: "fd00::/8" }] },
    ]);
    expect(winner(router, "/", { remoteAddress: "10.1.2.3" })).toBe("lan");
    expect(winner(router, "/", { remoteAddress: "::ffff:10.1.2.3" })).toBe("lan");
    expect(winner(router, "/", { remoteAddress: "127.0.0.1", remotePort: 4242 })).toBe("lan");
    expect(winner(router, "/", { remoteAddress: "127.0.0.1", remotePort: 4243 })).toBeUndefined();
    expect(winner(router, "/", { remoteAddress: "fd12::1" })).toBe("v6");
    expect(winner(router, "/", { remoteAddress: "11.0.0.1" })).toBeUndefined();
  });

  it("destinations match the listener's address and port", () => {
    const router = routerOf([{ name: "r", destinations: [{ port: 8443 }] }]);
    expect(winner(router, "/", { localPort: 8443 })).toBe("r");
    expect(winner(router, "/", { localPort: 8000 })).toBeUndefined();
  });
});
