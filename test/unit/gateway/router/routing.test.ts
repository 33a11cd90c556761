import { describe, expect, it } from "bun:test";
import { routingFor, sameData } from "../../../../src/gateway/router/routing.ts";
import { parseToml } from "../../../support/config.ts";

const SERVICES = `[[services]]\nname = "a"\nurl = "http://127.0.0.1:1/"\n[[services]]\nname = "b"\nurl = "http://127.0.0.1:2/base"\n`;
const ROUTES = `
[[routes]]
name = "one"
service = "a"
paths = ["/one", "~/one/\\\\d+$"]
methods = ["GET"]
[[routes]]
name = "two"
service = "b"
hosts = ["*.example.test"]
headers = { x-tenant = ["t1", "t2"] }
sources = [{ ip = "10.0.0.0/8" }]
`;

const config = (services = SERVICES, routes = ROUTES) => parseToml(services + routes);

describe("the routing a reload keeps", () => {
  it("is the running one when the new config has the same routes and services", () => {
    const running = routingFor(config());
    expect(routingFor(config(), running)).toBe(running);
  });

  it("is built anew when a route, the list of routes or a service differs", () => {
    const running = routingFor(config());
    const changed = [
      config(SERVICES, ROUTES.replace('"/one"', '"/uno"')),
      config(SERVICES, ROUTES.replace('"t2"', '"t3"')),
      config(SERVICES, ROUTES.replace('"10.0.0.0/8"', '"10.0.0.0/16"')),
      config(SERVICES, ROUTES.replace('methods = ["GET"]', 'methods = ["GET"]\nstrip_path = false')),
      config(SERVICES, `${ROUTES}[[routes]]\nname = "three"\nservice = "a"\npaths = ["/three"]\n`),
      config(SERVICES, ROUTES.slice(0, ROUTES.indexOf('[[routes]]\nname = "two"'))),
      config(SERVICES.replace("127.0.0.1:2/base", "127.0.0.1:2/other")),
    ];
    for (const next of changed) {
      const routing = routingFor(next, running);
      expect(routing).not.toBe(running);
      expect(routing.routes.map((r) => r.config)).toEqual(next.routes);
      expect(routing.routes.every((r) => r.service === next.services.find((s) => s.name === r.config.service))).toBe(true);
    }
  });

  it("compares config values by content: lists, tables and their order of elements", () => {
    expect(sameData({ a: ["x", 1, true], b: { c: [] } }, { b: { c: [] }, a: ["x", 1, true] })).toBe(true);
    expect(sameData({ a: ["x", "y"] }, { a: ["y", "x"] })).toBe(false);
    expect(sameData({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(sameData({ a: [] }, { a: {} })).toBe(false);
    expect(sameData(new URL("http://a/"), new URL("http://b/"))).toBe(false);
    expect(sameData(1, "1")).toBe(false);
  });
});
