import { describe, expect, it } from "bun:test";
import { pluginsForRoute } from "../../../src/gateway/app.ts";
import type { CompiledRoute } from "../../../src/gateway/router/router.ts";
import { parseToml } from "../../support/config.ts";

const config = parseToml(
  `
[[services]]
name = "svc"
url = "http://127.0.0.1:1/"
[[services]]
name = "other"
url = "http://127.0.0.1:2/"
[[routes]]
name = "r1"
service = "svc"
paths = ["/a"]
[[routes]]
name = "r2"
service = "svc"
paths = ["/b"]
[[routes]]
name = "r3"
service = "other"
paths = ["/c"]
[[plugins]]
name = "request-termination"
[plugins.config]
message = "global"
[[plugins]]
name = "request-termination"
service = "svc"
[plugins.config]
message = "service"
[[plugins]]
name = "request-termination"
route = "r1"
[plugins.config]
message = "route"
`,
);

const route = (name: string): CompiledRoute => {
  const r = config.routes.find((x) => x.name === name)!;
  return { config: r, service: config.services.find((s) => s.name === r.service)!, index: 0 };
};
const active = config.plugins.map((entry) => ({ entry, priority: 2, instance: { handler: async () => {} } }));
const chosen = (name: string) => pluginsForRoute(route(name), active).map((p) => (p.entry.config as { message: string }).message);

describe("plugin precedence (Kong's)", () => {
  it("a route's own plugin beats its service's and the global one", () => expect(chosen("r1")).toEqual(["route"]));
  it("a service's plugin beats the global one", () => expect(chosen("r2")).toEqual(["service"]));
  it("the global plugin applies where nothing more specific is configured", () => expect(chosen("r3")).toEqual(["global"]));
});
