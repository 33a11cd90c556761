/**
 * Runs last in `make test`: every gateway the end-to-end suites started wrote its whole log
 * into OIDC_GATEWAY_AUDIT_DIR, with the secrets of its config. None of them, and no token,
 * proof, assertion or private key, may appear in any log line.
 */
import { describe, expect, it } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SERVICE_SECRET } from "../support/idp-process.ts";

const dir = process.env.OIDC_GATEWAY_AUDIT_DIR;
const read = (name: string) => (dir && existsSync(join(dir, name)) ? readFileSync(join(dir, name), "utf8") : "");

describe.if(!!dir)("the logs of every gateway of the test run", () => {
  const log = read("gateway.log");
  const lines = log.split("\n");
  // The dev IdP's client secrets the suites use, and every secret-looking value of every config.
  const secrets = new Set([
    SERVICE_SECRET,
    "cert-bound-secret",
    "client-dpop-auth-secret",
    "opaque-secret",
    ...read("secrets.txt")
      .split("\n")
      .filter((s) => s.length >= 8),
  ]);

  it("are there to audit (the suites ran with the audit on)", () => {
    expect(lines.length).toBeGreaterThan(1000);
    expect(read("secrets.txt").trim()).not.toBe("");
  });

  it("hold no secret from any config", () => {
    const leaks = [...secrets].filter((s) => log.includes(s));
    expect(leaks).toEqual([]);
  });

  it("hold no JWT: no access token, DPoP proof or client assertion", () => {
    expect(lines.filter((l) => /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\./.test(l))).toEqual([]);
  });

  it("hold no private key", () => {
    expect(lines.filter((l) => /PRIVATE KEY|"d"\s*:\s*"/.test(l))).toEqual([]);
  });

  it("hold no Basic credentials", () => {
    expect(lines.filter((l) => /Basic [A-Za-z0-9+/]{12,}={0,2}/.test(l))).toEqual([]);
  });
});
