/** The routes table of gateway.toml: Kong's route attributes, and errors that name the key. */
import { describe, expect, it } from "bun:test";
import { errorOf as tomlErrorOf, parseToml } from "../../support/config.ts";

const withRoute = (route: string) => `[[services]]\nname = "svc"\nurl = "http://127.0.0.1:9000"\n[[routes]]\nname = "r"\nservice = "svc"\n${route}\n`;
const parse = (route: string) => parseToml(withRoute(route)).routes[0]!;
const errorOf = (route: string) => tomlErrorOf(withRoute(route));

describe("[[routes]] attributes", () => {
  it("fills Kong's defaults", () => {
    const r = parse(`paths = ["/"]`);
    expect(r.protocols).toEqual(["http", "https"]);
    expect(r.https_redirect_status_code).toBe(426);
    expect(r.headers).toEqual({});
    expect(r.snis).toEqual([]);
    expect(r.sources).toEqual([]);
    expect(r.destinations).toEqual([]);
  });

  it("accepts headers, snis, sources, destinations, ws/wss and a redirect code", () => {
    const r = parse(`
protocols = ["https", "wss"]
https_redirect_status_code = 308
snis = ["api.example.com", "*.example.org"]
sources = [{ ip = "10.0.0.0/8" }, { ip = "::1", port = 4000 }]
destinations = [{ port = 8443 }]
[routes.headers]
x-version = ["v1", "~*^v2"]`);
    expect(r.headers).toEqual({ "x-version": ["v1", "~*^v2"] });
    expect(r.sources).toEqual([{ ip: "10.0.0.0/8" }, { ip: "::1", port: 4000 }]);
    expect(r.https_redirect_status_code).toBe(308);
  });

  it("lets a route match on headers alone", () => {
    expect(parse(`headers = { x-tenant = ["a"] }`).headers).toEqual({ "x-tenant": ["a"] });
  });

  it.each([
    [`paths = ["/"]\nhttps_redirect_status_code = 303`, "routes[0].https_redirect_status_code: expected 426, 301, 302, 307 or 308"],
    [`paths = ["/"]\nprotocols = ["grpc"]`, "routes[0].protocols[0]"],
    [`sources = [{ ip = "10.0.0.0/33" }]`, "routes[0].sources[0].ip: expected an IP address or CIDR block"],
    [`sources = [{ ip = "not-an-ip" }]`, "routes[0].sources[0].ip"],
    [`destinations = [{ port = 70000 }]`, "routes[0].destinations[0].port"],
    [`destinations = [{}]`, "routes[0].destinations[0]: expected 'ip', 'port' or both"],
    [`headers = { host = ["a.example"] }`, "routes[0].headers.host: expected 'hosts' for the Host header"],
    [`headers = { x-v = ["~*("] }`, "routes[0].headers.x-v[0]: expected a valid regular expression after '~*'"],
    [`headers = { x-v = [] }`, "routes[0].headers.x-v: expected at least one value"],
    [`snis = ["api.example.com"]\nprotocols = ["http"]`, 'routes[0].snis: expected \'protocols\' to include "https" or "wss"'],
    [`snis = ["bad name"]`, "routes[0].snis[0]"],
    [`strip_path = true`, "routes[0]: expected at least one of 'paths', 'hosts', 'methods', 'headers', 'snis', 'sources' or 'destinations'"],
  ])("rejects %p naming the key", (route, message) => {
    expect(errorOf(route)).toContain(message);
  });
});
