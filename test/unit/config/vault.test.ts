import { describe, expect, it } from "bun:test";
import { envVariableName, resolveVaultReferences, showReferences, type VaultSources } from "../../../src/config/vault.ts";

const sources = (env: Record<string, string>, files: Record<string, string> = {}): VaultSources => ({
  env: (name) => env[name],
  readTextFile: async (path) => {
    if (path in files) return files[path]!;
    throw Object.assign(new Error(`ENOENT: ${path}`), { code: "ENOENT" });
  },
  resolvePath: (p) => (p.startsWith("/") ? p : `/etc/gw/${p}`),
});

describe("vault references in gateway.toml", () => {
  it("map an env vault name the way Kong does: upper case, dashes to underscores", () => {
    expect(envVariableName("my-client-secret")).toBe("MY_CLIENT_SECRET");
  });

  it("replace whole string values, anywhere, and remember where each came from", async () => {
    const raw = {
      server: { x: "{vault://env/salt}" },
      plugins: [{ config: { client_secret: "{vault://file/secrets/client}", scopes: ["{vault://env/scope}", "b"] } }],
    };
    const r = await resolveVaultReferences(raw, sources({ SALT: "s-a-l-t", SCOPE: "read" }, { "/etc/gw/secrets/client": "c-l-i\n" }));
    expect(r.errors).toEqual([]);
    expect(r.value).toEqual({ server: { x: "s-a-l-t" }, plugins: [{ config: { client_secret: "c-l-i", scopes: ["read", "b"] } }] });
    expect(r.references).toContainEqual({ path: ["plugins", 0, "config", "client_secret"], reference: "{vault://file/secrets/client}" });
    expect(r.references).toContainEqual({ path: ["plugins", 0, "config", "scopes", 0], reference: "{vault://env/scope}" });
  });

  it("read a field of a JSON environment value with /key", async () => {
    const r = await resolveVaultReferences({ a: "{vault://env/idp/secret}" }, sources({ IDP: '{"secret":"x-y"}' }));
    expect(r.value).toEqual({ a: "x-y" });
  });

  it("leave text that only contains a reference alone (Kong resolves whole values only)", async () => {
    const r = await resolveVaultReferences({ a: "prefix {vault://env/x}" }, sources({ X: "no" }));
    expect(r.value).toEqual({ a: "prefix {vault://env/x}" });
    expect(r.references).toEqual([]);
  });

  it("report every reference that does not resolve, with its key and reference and never a value", async () => {
    const r = await resolveVaultReferences(
      { a: "{vault://env/missing}", b: "{vault://file/nope}", c: "{vault://aws/x}", d: "{vault://env/idp/nokey}" },
      sources({ IDP: '{"secret":"s3cr3t-value"}' }),
    );
    const messages = r.errors.map((e) => `${e.path.join(".")}: ${e.message}`);
    expect(messages).toContain("a: the vault reference {vault://env/missing} does not resolve: the environment variable MISSING is not set");
    expect(messages.find((m) => m.startsWith("b:"))).toContain('cannot read "/etc/gw/nope"');
    expect(messages.find((m) => m.startsWith("c:"))).toContain('unknown vault "aws"');
    expect(messages.find((m) => m.startsWith("d:"))).toContain('has no string field "nokey"');
    expect(messages.join("\n")).not.toContain("s3cr3t-value");
  });

  it("are shown by the admin API as the reference, not the value", () => {
    const shown = showReferences(
      { name: "p", config: { client_secret: "[redacted]", issuer: "http://idp" } },
      ["plugins", 1],
      [
        { path: ["plugins", 1, "config", "issuer"], reference: "{vault://env/issuer}" },
        { path: ["plugins", 0, "config", "issuer"], reference: "{vault://env/other}" },
      ],
    );
    expect(shown).toEqual({ name: "p", config: { client_secret: "[redacted]", issuer: "{vault://env/issuer}" } });
  });
});
