import { describe, expect, it } from "bun:test";
import { pluginRegistry } from "../../../src/plugins/registry.ts";
import { configWarnings } from "../../../src/config/warnings.ts";
import { errorOf, parseToml } from "../../support/config.ts";

const route = `
[[routes]]
name = "r"
service = "svc"
paths = ["/"]
`;

describe("a service in Kong's split form", () => {
  it("builds the URL from protocol, host, port and path, with the protocol's port by default", () => {
    const c = parseToml(`[[services]]\nname = "svc"\nprotocol = "https"\nhost = "api.internal"\npath = "/v1"\n${route}`);
    expect(c.services[0]!.url.href).toBe("https://api.internal/v1");
    const plain = parseToml(`[[services]]\nname = "svc"\nhost = "10.0.0.7"\nport = 8080\n${route}`);
    expect(plain.services[0]!.url.href).toBe("http://10.0.0.7:8080/");
  });

  it("refuses url together with the split form, and a service with neither", () => {
    expect(errorOf(`[[services]]\nname = "svc"\nurl = "http://a"\nhost = "b"\n${route}`)).toContain(
      "services[0].host: expected either 'url' or the split form",
    );
    expect(errorOf(`[[services]]\nname = "svc"\n${route}`)).toContain("services[0].url: missing required key, expected 'url' or 'host'");
  });

  it("resolves client_certificate and ca_certificates against the config file's folder", () => {
    const c = parseToml(
      `[[services]]\nname = "svc"\nurl = "https://a"\nca_certificates = ["ca.crt"]\nclient_certificate = { cert = "c.crt", key = "c.key" }\n${route}`,
    );
    expect(c.services[0]!.ca_certificates).toEqual(["/etc/gw/ca.crt"]);
    expect(c.services[0]!.client_certificate).toEqual({ cert: "/etc/gw/c.crt", key: "/etc/gw/c.key" });
  });
});

describe("[[upstreams]] in gateway.toml", () => {
  it("names the key of a bad target", () => {
    expect(errorOf(`[[upstreams]]\nname = "backend"\n[[upstreams.targets]]\ntarget = "10.0.0.1"\n`)).toContain(
      'upstreams[0].targets[0].target: expected "host:port"',
    );
  });

  it("refuses an upstream name used twice", () => {
    expect(errorOf(`[[upstreams]]\nname = "backend"\n[[upstreams]]\nname = "Backend"\n`)).toContain("upstreams[1].name: expected a unique name");
  });

  it("warns about an upstream no service uses", () => {
    const c = parseToml(`[[upstreams]]\nname = "spare"\n[[services]]\nname = "svc"\nurl = "http://backend"\n${route}`);
    expect(configWarnings(c, pluginRegistry)).toContain('upstreams[0].name: no service names upstream "spare" as its host, so it is not used');
  });
});
