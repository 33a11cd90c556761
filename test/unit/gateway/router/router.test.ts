import { describe, expect, it } from "bun:test";
import { UpgradeRequiredError } from "../../../../src/errors.ts";
import { errorResponse } from "../../../../src/gateway/error-response.ts";
import { checkProtocol } from "../../../../src/gateway/router/protocols.ts";
import { Router, upstreamPath, type CompiledRoute } from "../../../../src/gateway/router/router.ts";
import { parseToml } from "../../../support/config.ts";
import { compileRoutes, facts, type RouteSpec } from "../../../support/routes.ts";

function routerFor(routesToml: string): Router {
  const config = parseToml(`[[services]]\nname = "s"\nurl = "http://127.0.0.1:1/"\n${routesToml}`);
  const routes: CompiledRoute[] = config.routes.map((r, index) => ({ config: r, service: config.services[0]!, index }));
  return new Router(routes);
}

const req = (path: string, extra: Partial<{ method: string; host: string; protocol: "http" | "https" }> = {}) => ({
  method: extra.method ?? "GET",
  host: extra.host ?? "gw.test",
  path,
  protocol: extra.protocol ?? "http",
});

describe("Kong route matching", () => {
  const router = routerFor(`
[[routes]]
name = "root"
service = "s"
paths = ["/"]
[[routes]]
name = "api"
service = "s"
paths = ["/api"]
[[routes]]
name = "api-v2"
service = "s"
paths = ["/api/v2"]
[[routes]]
name = "api-host"
service = "s"
paths = ["/api"]
hosts = ["api.test"]
[[routes]]
name = "wild"
service = "s"
paths = ["/api"]
hosts = ["*.example.com"]
[[routes]]
name = "posts"
service = "s"
paths = ["/api"]
methods = ["POST"]
hosts = ["api.test"]
[[routes]]
name = "regex"
service = "s"
paths = ["~/users/\\\\d+$"]
[[routes]]
name = "https-only"
service = "s"
paths = ["/secure"]
protocols = ["https"]
`);
  const name = (r: ReturnType<Router["match"]>) => r?.route.config.name;

  it("picks the longest matching path prefix", () => {
    expect(name(router.match(req("/api/v2/things")))).toBe("api-v2");
    expect(name(router.match(req("/api/v1")))).toBe("api");
    expect(name(router.match(req("/other")))).toBe("root");
  });

  it("matches prefixes as Kong does: /api also matches /apix", () => {
    expect(name(router.match(req("/apix")))).toBe("api");
  });

  it("prefers a route that also names the host, then one that also names methods", () => {
    expect(name(router.match(req("/api/x", { host: "api.test" })))).toBe("api-host");
    expect(name(router.match(req("/api/x", { host: "api.test:8000", method: "POST" })))).toBe("posts");
  });

  it("matches wildcard hosts but not the bare domain", () => {
    expect(name(router.match(req("/api", { host: "a.example.com" })))).toBe("wild");
    expect(name(router.match(req("/api", { host: "example.com" })))).toBe("api");
  });

  it("tries regex paths before prefixes", () => {
    expect(name(router.match(req("/users/42")))).toBe("regex");
    expect(name(router.match(req("/users/abc")))).toBe("root");
  });

  it("matches whatever the protocol: Kong checks a route's protocols after matching (426)", () => {
    expect(name(router.match(req("/secure")))).toBe("https-only");
    expect(name(router.match(req("/secure", { protocol: "https" })))).toBe("https-only");
  });

  it("strips the matched prefix when strip_path is on", () => {
    expect(router.match(req("/api/v2/things"))?.strippedPath).toBe("/things");
    expect(router.match(req("/openid-connect"))?.strippedPath).toBe("openid-connect");
  });

  it("answers nothing when no route matches", () => {
    const only = routerFor(`[[routes]]\nname = "a"\nservice = "s"\npaths = ["/a"]\n`);
    expect(only.match(req("/b"))).toBeUndefined();
  });

  it("keeps file order as the last tie-breaker", () => {
    const twin = routerFor(`[[routes]]\nname = "first"\nservice = "s"\npaths = ["/x"]\n[[routes]]\nname = "second"\nservice = "s"\npaths = ["/x"]\n`);
    expect(name(twin.match(req("/x")))).toBe("first");
  });
});

describe("Kong path_handling", () => {
  // The table of Kong's route documentation.
  it.each([
    ["/s", "req", "v0", "/s/req"],
    ["/s", "/fv0req", "v0", "/s/fv0req"],
    ["/s", "", "v0", "/s"],
    ["/s", "req", "v1", "/sreq"],
    ["/s/", "/req", "v0", "/s/req"],
    ["/", "/anything", "v0", "/anything"],
    ["/anything", "openid-connect", "v0", "/anything/openid-connect"],
  ] as const)("service path %p + %p (%s) -> %p", (service, stripped, handling, expected) => {
    expect(upstreamPath(service, stripped, handling)).toBe(expected);
  });
});

describe("Kong protocols check after matching", () => {
  const plain = { tls: false, websocket: false, host: "api.example:8000", requestUri: "/a?b=1" };

  it("answers 426 with Kong's body and Upgrade header to HTTP on an HTTPS-only route", async () => {
    let thrown: unknown;
    try {
      checkProtocol({ protocols: ["https"] }, plain);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(UpgradeRequiredError);
    const res = errorResponse(thrown);
    expect(res.status).toBe(426);
    expect(res.headers.get("upgrade")).toBe("TLS/1.2, HTTP/1.1");
    expect(res.headers.get("connection")).toBe("Upgrade");
    expect(await res.json()).toEqual({ message: "Please use HTTPS protocol" });
  });

  it.each([301, 302, 307, 308])("redirects to https with https_redirect_status_code = %d", (status) => {
    const res = checkProtocol({ protocols: ["https"], https_redirect_status_code: status }, plain);
    expect(res?.status).toBe(status);
    expect(res?.headers.get("location")).toBe("https://api.example/a?b=1");
  });

  it("lets TLS requests and routes that allow http through", () => {
    expect(checkProtocol({ protocols: ["https"] }, { ...plain, tls: true })).toBeUndefined();
    expect(checkProtocol({ protocols: ["http", "https"] }, plain)).toBeUndefined();
    expect(checkProtocol({ protocols: ["http"] }, { ...plain, tls: true })).toBeUndefined();
  });

  it("treats wss like https and asks a WebSocket-only route for an upgrade", () => {
    expect(() => checkProtocol({ protocols: ["wss"] }, { ...plain, websocket: true })).toThrow(UpgradeRequiredError);
    expect(checkProtocol({ protocols: ["ws", "wss"] }, { ...plain, websocket: true })).toBeUndefined();
    expect(() => checkProtocol({ protocols: ["ws", "wss"] }, plain)).toThrow("route requires a WebSocket upgrade");
  });
});

describe("regex paths without a literal prefix, many of them", () => {
  // 100 regexes filed under "/" (their literal prefix), tried as chunks before one by one.
  const specs: RouteSpec[] = Array.from({ length: 100 }, (_, i) => ({ name: `re${i}`, paths: [`~/(?:v1|v2)/r${i}(?:/|$)`] }));
  specs.push({ name: "any-version", paths: ["~/(?:v1|v2)/"], regex_priority: -1 });
  specs.push({ name: "post-only", paths: ["~/(?:v1|v2)/r7[0-9]/"], methods: ["POST"] });
  specs.push({ name: "prefix", paths: ["/"] });
  const router = new Router(compileRoutes(specs));
  const winner = (path: string, method = "GET") => router.match(facts(path, { method }))?.route.config.name;

  it("finds the one that matches wherever it sits, and the prefix route when none does", () => {
    expect(winner("/v1/r0/x")).toBe("re0");
    expect(winner("/v2/r99")).toBe("re99");
    expect(winner("/v1/r64/")).toBe("re64");
    expect(winner("/v1/nothing")).toBe("any-version");
    expect(winner("/v3/r5")).toBe("prefix");
  });

  it("keeps Kong's order: more attributes first, then regex_priority, then file order", () => {
    expect(winner("/v1/r75/", "POST")).toBe("post-only");
    expect(winner("/v1/r75/")).toBe("re75");
    expect(winner("/v1/r7x/", "GET")).toBe("any-version");
  });

  it("still matches regexes that refer to their own groups (no chunks then)", () => {
    const refs = new Router(
      compileRoutes([
        { name: "aa", paths: ["~/(a)\\1/"] },
        { name: "bb", paths: ["~/(b)\\1/"] },
      ]),
    );
    expect(refs.match(facts("/aa/"))?.route.config.name).toBe("aa");
    expect(refs.match(facts("/bb/"))?.route.config.name).toBe("bb");
    expect(refs.match(facts("/ab/"))).toBeUndefined();
  });
});
