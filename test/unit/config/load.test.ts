import { describe, expect, it } from "bun:test";
import { formatPath } from "../../../src/config/load.ts";
import { CONFIG_FILE, errorOf, MINIMAL_CONFIG, parseToml } from "../../support/config.ts";

const base = MINIMAL_CONFIG;

describe("gateway.toml validation", () => {
  it("accepts the minimal example and fills Kong's defaults", () => {
    const c = parseToml(base);
    expect(c.server.proxy_listen).toEqual({ hostname: "0.0.0.0", port: 8000 });
    expect(c.server.admin_listen).toEqual({ hostname: "127.0.0.1", port: 8001 });
    expect(c.services[0]!.connect_timeout).toBe(60000);
    expect(c.services[0]!.retries).toBe(5);
    expect(c.routes[0]!.strip_path).toBe(true);
    expect(c.routes[0]!.preserve_host).toBe(false);
  });

  it("freezes the tables of the result so nothing changes them after start", () => {
    const c = parseToml(base);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.server)).toBe(true);
    expect(Object.isFrozen(c.routes[0])).toBe(true);
  });

  it("resolves relative file paths against the config file's folder", () => {
    const c = parseToml(`[server]\ntrusted_certificates = ["certs/ca.crt", "/abs/ca.crt"]\n${base}`);
    expect(c.server.trusted_certificates).toEqual(["/etc/gw/certs/ca.crt", "/abs/ca.crt"]);
  });

  it("names the file, the line and the column of a TOML syntax error", () => {
    expect(errorOf("a = 1\nb = [1,\nc")).toMatch(/^\/etc\/gw\/gateway\.toml:3:1: TOML syntax error: unexpected "c"/);
  });

  it("names the dotted key path and what was expected", () => {
    const msg = errorOf(base.replace('paths = ["/"]', 'paths = ["/", "api"]'));
    expect(msg).toContain(CONFIG_FILE);
    expect(msg).toContain("routes[0].paths[1]: expected a path starting with '/'");
  });

  it("rejects unknown keys with a did-you-mean", () => {
    const msg = errorOf(base + "strip_paths = false\n");
    expect(msg).toContain('routes[0].strip_paths: unknown key (did you mean "strip_path"?)');
  });

  it("rejects unknown top-level tables", () => {
    expect(errorOf(base + "[sever]\nproxy_listen = '1.2.3.4:1'\n")).toContain('sever: unknown key (did you mean "server"?)');
  });

  it("says which required key is missing", () => {
    expect(errorOf("[[services]]\nname = 'svc'\n")).toContain("services[0].url: missing required key");
  });

  it("rejects a route naming a service that does not exist", () => {
    expect(errorOf(base.replace('service = "svc"', 'service = "scv"'))).toContain(
      'routes[0].service: expected the name of a service, no service is named "scv" (did you mean "svc"?)',
    );
  });

  it("rejects duplicate names", () => {
    expect(errorOf(base + base.split("[[routes]]")[0]!)).toContain('services[1].name: expected a unique name, "svc" is used twice');
  });

  it("rejects a listen address that is not host:port", () => {
    expect(errorOf(`[server]\nproxy_listen = "8000"\n${base}`)).toContain('server.proxy_listen: expected "host:port"');
    expect(parseToml(`[server]\nproxy_listen = "[::1]:8080"\n${base}`).server.proxy_listen).toEqual({
      hostname: "::1",
      port: 8080,
    });
  });

  it("lets the admin API be turned off", () => {
    expect(parseToml(`[server]\nadmin_listen = "off"\n${base}`).server.admin_listen).toBe("off");
  });

  it("needs [server.tls] when proxy_tls_listen is set", () => {
    expect(errorOf(`[server]\nproxy_tls_listen = "0.0.0.0:8443"\n${base}`)).toContain("server.tls: expected a [server.tls] table");
  });

  it("rejects a service URL that is not http(s)", () => {
    expect(errorOf(base.replace("http://127.0.0.1:9000/anything", "ftp://x"))).toContain("services[0].url: expected an http:// or https:// URL");
  });

  it("rejects a service URL with a user and password in it", () => {
    expect(errorOf(base.replace("http://127.0.0.1:9000/anything", "http://user:secret@127.0.0.1:9000/anything"))).toContain(
      "services[0].url: expected a URL without user:password",
    );
  });

  it("rejects a route with nothing to match on", () => {
    expect(errorOf(base.replace('paths = ["/"]', ""))).toContain(
      "routes[0]: expected at least one of 'paths', 'hosts', 'methods', 'headers', 'snis', 'sources' or 'destinations'",
    );
  });

  it("rejects an invalid regex path", () => {
    expect(errorOf(base.replace('paths = ["/"]', 'paths = ["~/a(b"]'))).toContain("routes[0].paths[0]: expected a valid regular expression");
  });

  it("rejects unknown plugins with a did-you-mean and the list of known ones", () => {
    const msg = errorOf(base + '[[plugins]]\nname = "request-terminaton"\n');
    expect(msg).toContain('plugins[0].name: unknown plugin "request-terminaton" (did you mean "request-termination"?)');
  });

  it("validates a plugin's own config under plugins[i].config", () => {
    const msg = errorOf(base + '[[plugins]]\nname = "request-termination"\n[plugins.config]\nstatus_code = 99\nstatuscode = 1\n');
    expect(msg).toContain("plugins[0].config.status_code:");
    expect(msg).toContain('plugins[0].config.statuscode: unknown key (did you mean "status_code"?)');
  });

  it("rejects plugins that name a missing route or service", () => {
    const msg = errorOf(base + '[[plugins]]\nname = "request-termination"\nroute = "nope"\n');
    expect(msg).toContain('plugins[0].route: expected the name of a route, no route is named "nope"');
  });

  it("rejects the same plugin twice on the same scope", () => {
    const msg = errorOf(base + '[[plugins]]\nname = "request-termination"\n[[plugins]]\nname = "request-termination"\n');
    expect(msg).toContain('plugins[1]: plugin "request-termination" is configured twice');
  });

  it("formats paths with brackets for indices and dots for keys", () => {
    expect(formatPath(["routes", 1, "paths", 0])).toBe("routes[1].paths[0]");
    expect(formatPath(["plugins", 0, "config", "issuer"])).toBe("plugins[0].config.issuer");
  });
});
