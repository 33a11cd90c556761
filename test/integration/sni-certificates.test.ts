/**
 * [[certificates]]: the TLS proxy listener serves the certificate whose `snis` names what the
 * caller asked for (TLS SNI), `[server.tls]` to everyone else; `check` refuses a key that does
 * not belong to its certificate.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { connect, type PeerCertificate } from "node:tls";
import { CERTS_DIR, ensureCerts } from "../support/certs.ts";
import { startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { tempFolders } from "../support/temp.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

/** The suite's certificates and check files, removed after the file. */
const dir = tempFolders("gw-sni-")();
let upstream: EchoUpstream;
let gw: GatewayProcess;

/** A throwaway self-signed certificate for `cn` (and its SAN). */
function selfSigned(name: string, cn: string): void {
  const r = Bun.spawnSync([
    "openssl",
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=${cn}`,
    "-addext",
    `subjectAltName=DNS:${cn}`,
    "-keyout",
    join(dir, `${name}.key`),
    "-out",
    join(dir, `${name}.crt`),
  ]);
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
}

/** A config file for `check` (fixed ports are fine: check opens none). */
function checkFile(name: string, certificates: string): string {
  const file = join(dir, name);
  writeFileSync(file, config(certificates).replaceAll("{{proxy}}", "8000").replaceAll("{{proxy_tls}}", "8443").replaceAll("{{admin}}", "8001"));
  return file;
}

function servedFor(servername: string | undefined): Promise<PeerCertificate> {
  return new Promise((ok, fail) => {
    const socket = connect({ host: "127.0.0.1", port: gw.ports.proxyTls, rejectUnauthorized: false, ...(servername ? { servername } : {}) }, () => {
      const cert = socket.getPeerCertificate();
      socket.destroy();
      ok(cert);
    });
    socket.on("error", fail);
  });
}

const config = (certificates: string) => `[server]
proxy_listen = "127.0.0.1:{{proxy}}"
proxy_tls_listen = "127.0.0.1:{{proxy_tls}}"
admin_listen = "127.0.0.1:{{admin}}"
shutdown_timeout = 2000
[server.tls]
cert = "${CERTS_DIR}/gateway.crt"
key = "${CERTS_DIR}/gateway.key"

${certificates}
[[services]]
name = "echo"
url = "${upstream.url}"

[[routes]]
name = "all"
service = "echo"
paths = ["/"]
`;

beforeAll(async () => {
  ensureCerts();
  selfSigned("api", "api.example.test");
  selfSigned("wild", "*.apps.example.test");
  upstream = startEchoUpstream();
  gw = await startGateway({
    config: config(`[[certificates]]
cert = "${dir}/api.crt"
key = "${dir}/api.key"
snis = ["api.example.test"]

[[certificates]]
cert = "${dir}/wild.crt"
key = "${dir}/wild.key"
snis = ["*.apps.example.test"]
`),
  });
});

afterAll(async () => {
  await gw?.stop();
  await upstream?.stop();
});

describe("certificates by SNI", () => {
  it("serves each [[certificates]] entry for its server names, wildcards included", async () => {
    expect((await servedFor("api.example.test")).subject.CN).toBe("api.example.test");
    expect((await servedFor("shop.apps.example.test")).subject.CN).toBe("*.apps.example.test");
  });

  it("serves [server.tls] for any other name, and without SNI", async () => {
    const other = await servedFor("localhost");
    expect(other.subject.CN).not.toBe("api.example.test");
    expect(other.subject.CN).not.toBe("*.apps.example.test");
    expect((await servedFor(undefined)).fingerprint256).toBe(other.fingerprint256);
  });

  it("refuses, in check, a key that does not belong to its certificate, naming the key", () => {
    const file = checkFile("mismatch.toml", `[[certificates]]\ncert = "${dir}/api.crt"\nkey = "${dir}/wild.key"\nsnis = ["api.example.test"]\n`);
    const r = Bun.spawnSync([resolve(import.meta.dir, "../../dist/oidc-gateway"), "check", "-c", file]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toContain("certificates[0].key: expected the private key of certificates[0].cert");
  });

  it("refuses, in check, a server name listed twice", () => {
    const file = checkFile(
      "twice.toml",
      `[[certificates]]\ncert = "${dir}/api.crt"\nkey = "${dir}/api.key"\nsnis = ["api.example.test"]\n[[certificates]]\ncert = "${dir}/wild.crt"\nkey = "${dir}/wild.key"\nsnis = ["API.example.test"]\n`,
    );
    const r = Bun.spawnSync([resolve(import.meta.dir, "../../dist/oidc-gateway"), "check", "-c", file]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toContain('certificates[1].snis[0]: expected each server name once, "api.example.test" is also in certificates[0]');
  });
});
