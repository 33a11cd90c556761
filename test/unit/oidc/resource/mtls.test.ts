import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuthError } from "../../../../src/errors.ts";
import { errorResponse } from "../../../../src/gateway/error-response.ts";
import { certificateThumbprint, checkCertificateBinding, type PopMode } from "../../../../src/oidc/resource/mtls.ts";
import type { PeerCertificate } from "../../../../src/runtime/types.ts";

let dir: string;
let client: PeerCertificate;
let other: PeerCertificate;
/** x5t#S256 computed independently: node's fingerprint256 (hex) re-encoded as base64url. */
let clientX5t: string;

function load(name: string, verified: boolean): PeerCertificate {
  const cert = new X509Certificate(readFileSync(join(dir, `${name}.crt`)));
  return { der: new Uint8Array(cert.raw), subject: "CN=JohnDoe,OU=IT", verified };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "mtls-unit-"));
  const made = Bun.spawnSync(["bash", "scripts/make-certs.sh", dir]);
  if (made.exitCode !== 0) throw new Error(made.stderr.toString());
  client = load("client", true);
  other = load("other-client", true);
  const fingerprint = new X509Certificate(readFileSync(join(dir, "client.crt"))).fingerprint256;
  clientX5t = Buffer.from(fingerprint.replace(/:/g, ""), "hex").toString("base64url");
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function outcome(mode: PopMode, claims: Record<string, unknown>, peer: PeerCertificate | undefined): Promise<string> {
  try {
    const matched = await checkCertificateBinding({ mode, claims, peerCertificate: peer });
    return matched ? "ok:bound" : "ok";
  } catch (error) {
    if (!(error instanceof AuthError)) throw error;
    expect(error.status).toBe(401);
    return error.error!;
  }
}

describe("the certificate thumbprint (RFC 8705 §3.1)", () => {
  it("is base64url(SHA-256(DER)), as computed independently from the certificate file", async () => {
    expect(await certificateThumbprint(client)).toBe(clientX5t);
  });

  it("differs for another certificate with the same subject", async () => {
    expect(await certificateThumbprint(other)).not.toBe(clientX5t);
  });
});

describe("proof_of_possession_mtls", () => {
  const bound = () => ({ sub: "cert-bound", cnf: { "x5t#S256": clientX5t } });
  const unbound = { sub: "service" };

  // mode, token, certificate on the connection, outcome
  const table: [PopMode, "bound" | "unbound", "right" | "other" | "unverified" | "none", string][] = [
    ["off", "bound", "none", "ok"],
    ["off", "bound", "other", "ok"],
    ["optional", "bound", "right", "ok:bound"],
    ["optional", "bound", "other", "invalid_token"],
    ["optional", "bound", "unverified", "invalid_token"],
    ["optional", "bound", "none", "invalid_token"],
    ["optional", "unbound", "none", "ok"],
    ["optional", "unbound", "other", "ok"],
    ["strict", "bound", "right", "ok:bound"],
    ["strict", "bound", "other", "invalid_token"],
    ["strict", "bound", "none", "invalid_token"],
    ["strict", "unbound", "right", "invalid_token"],
    ["strict", "unbound", "none", "invalid_token"],
  ];

  it.each(table)("%s: a %s token with the %s certificate → %s", async (mode, token, cert, expected) => {
    const peer = cert === "right" ? client : cert === "other" ? other : cert === "unverified" ? { ...client, verified: false } : undefined;
    expect(await outcome(mode, token === "bound" ? bound() : unbound, peer)).toBe(expected);
  });

  it("ignores a malformed cnf as no binding", async () => {
    expect(await outcome("optional", { cnf: { "x5t#S256": 42 } }, undefined)).toBe("ok");
    expect(await outcome("optional", { cnf: "x" }, undefined)).toBe("ok");
    expect(await outcome("strict", { cnf: null }, client)).toBe("invalid_token");
  });

  it('answers 401 with error="invalid_token" in the challenge', async () => {
    try {
      await checkCertificateBinding({
        mode: "strict",
        claims: bound(),
        peerCertificate: other,
        challenges: [{ scheme: "Bearer", params: { realm: "api" } }],
      });
      throw new Error("expected a rejection");
    } catch (error) {
      const response = errorResponse(error);
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toStartWith('Bearer realm="api", error="invalid_token"');
    }
  });
});
