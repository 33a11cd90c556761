/** The command line of the compiled binary: check, --version, --help and exit codes. */
import { describe, expect, it } from "bun:test";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { tempFolders } from "../support/temp.ts";

const BIN = resolve(import.meta.dir, "../../dist/oidc-gateway");
const configFolder = tempFolders("gw-cli-");

function run(...args: string[]) {
  const r = Bun.spawnSync([BIN, ...args]);
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

function configFile(text: string): string {
  const file = join(configFolder(), "gateway.toml");
  writeFileSync(file, text);
  return file;
}

describe("oidc-gateway check", () => {
  it("exits 0 for a valid file", () => {
    const r = run("check", "--config", resolve(import.meta.dir, "../../gateway.toml"));
    expect(r.code).toBe(0);
    expect(r.out).toContain("configuration is valid");
  });

  it("exits 1 and names the file, the key path and what was expected", () => {
    const file = configFile('[[services]]\nname = "s"\nurl = "http://x/"\n[[routes]]\nname = "r"\nservice = "s"\npaths = ["/ok", "bad"]\n');
    const r = run("check", "-c", file);
    expect(r.code).toBe(1);
    expect(r.err).toContain(file);
    expect(r.err).toContain("routes[0].paths[1]: expected a path starting with '/'");
  });

  it("exits 1 with line and column for a TOML syntax error", () => {
    const file = configFile("[server]\nproxy_listen = \n");
    const r = run("check", "-c", file);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`${file}:2:\\d+: TOML syntax error`));
  });

  it("exits 1 when the file cannot be read", () => {
    expect(run("check", "-c", "/nonexistent/gateway.toml").code).toBe(1);
  });
});

describe("oidc-gateway check warnings", () => {
  it("warns that a configuration without routes answers every request 404", () => {
    const file = configFile("");
    const r = run("check", "-c", file);
    expect(r.code).toBe(0);
    expect(r.err).toContain(`${file}: warning: routes: no routes: every request will be answered 404`);
  });

  it("warns about risky settings on stderr and still exits 0", () => {
    const file = configFile(`[server]
admin_listen = "0.0.0.0:8001"
admin_token = "a-long-enough-admin-token"
[[services]]
name = "s"
url = "https://127.0.0.1:9000/"
tls_verify = false
[[routes]]
name = "r"
service = "s"
paths = ["/"]
[[plugins]]
name = "openid-connect"
[plugins.config]
issuer = "https://idp.example.com/realms/master"
ssl_verify = false
enable_hs_signatures = true
cache_ttl_max = 7200
`);
    const r = run("check", "-c", file);
    expect(r.code).toBe(0);
    for (const key of [
      "server.admin_listen",
      "services[0].tls_verify",
      "plugins[0].config.ssl_verify",
      "plugins[0].config.enable_hs_signatures",
      "plugins[0].config.cache_ttl_max",
    ]) {
      expect(r.err).toContain(`${file}: warning: ${key}:`);
    }
  });

  it("warns that DPoP replay records are per worker unless the fleet shares them", () => {
    const file = configFile(`[server]
workers = 2
[[services]]
name = "s"
url = "http://127.0.0.1:9000/"
[[routes]]
name = "r"
service = "s"
paths = ["/"]
[[plugins]]
name = "openid-connect"
[plugins.config]
issuer = "http://127.0.0.1:8080/realms/master"
auth_methods = ["bearer"]
audience_required = ["api"]
proof_of_possession_dpop = "strict"
`);
    const r = run("check", "-c", file);
    expect(r.code).toBe(0);
    expect(r.err).toContain("plugins[0].config.proof_of_possession_dpop: with [server] workers = 2, each worker keeps its own DPoP replay records");
  });

  it("prints no warning for the example gateway.toml", () => {
    expect(run("check", "-c", resolve(import.meta.dir, "../../gateway.toml")).err).toBe("");
  });
});

describe("usage", () => {
  it("prints the version", () => {
    const r = run("--version");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^oidc-gateway \d+\.\d+\.\d+ \(bun /);
  });

  it("prints help with the exit codes", () => {
    const r = run("--help");
    expect(r.code).toBe(0);
    expect(r.out).toContain("Exit codes:");
  });

  it("exits 2 on an unknown argument", () => {
    expect(run("--bogus").code).toBe(2);
  });

  it("runs no bunfig.toml preload and reads no .env from its working directory", () => {
    const cwd = configFolder();
    writeFileSync(join(cwd, "bunfig.toml"), 'preload = ["./preload.js"]\n');
    writeFileSync(join(cwd, "preload.js"), 'console.log("preloaded from the working directory");\n');
    writeFileSync(join(cwd, ".env"), "OIDC_SALT=from-dotenv\n");
    const file = join(cwd, "gateway.toml");
    writeFileSync(
      file,
      '[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "https://idp.example/"\ncache_tokens_salt = "{vault://env/oidc-salt}"\n',
    );
    const r = Bun.spawnSync([BIN, "check", "--config", file], { cwd, env: { PATH: process.env.PATH ?? "" } });
    const out = r.stdout.toString() + r.stderr.toString();
    expect(out).not.toContain("preloaded from the working directory");
    expect(r.exitCode).toBe(1);
    expect(out).toContain("OIDC_SALT");
  });

  it("exits 1 at start when the config is invalid, before listening", () => {
    const r = run("--config", configFile("[server]\nproxy_listn = '127.0.0.1:1'\n"));
    expect(r.code).toBe(1);
    expect(r.err).toContain('server.proxy_listn: unknown key (did you mean "proxy_listen"?)');
  });
});
