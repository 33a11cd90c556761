/**
 * TLS towards the upstream, per service: an upstream that requires a client certificate,
 * reached with the service's `client_certificate` (or its `[[upstreams]]`' one) and trusted
 * through its `ca_certificates`; and `tls_verify_depth` against an upstream whose certificate
 * hangs under two intermediate CAs (made here with openssl).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cert, ensureCerts } from "../support/certs.ts";
import { startGateway, type GatewayProcess, serverTable } from "../support/gateway-process.ts";
import { serviceToml, upstreamToml } from "../support/upstreams.ts";

let upstream: Server;
let deep: Server;
let port: number;
let gw: GatewayProcess;

/** root -> int1 -> int2 -> leaf (CN=localhost, IP 127.0.0.1); the leaf's file carries the two intermediates. */
function deepChain(): { dir: string; leaf: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), "deep-chain-"));
  const run = (...args: string[]) => {
    const r = Bun.spawnSync(["openssl", ...args], { cwd: dir, stderr: "pipe" });
    if (r.exitCode !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr.toString()}`);
  };
  writeFileSync(
    join(dir, "ext.cnf"),
    "[ca]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign\n" +
      "[leaf]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost, IP:127.0.0.1\n",
  );
  const key = (name: string) => run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", `${name}.key`);
  key("root");
  run(
    "req",
    "-x509",
    "-new",
    "-key",
    "root.key",
    "-subj",
    "/CN=deep root",
    "-days",
    "2",
    "-extensions",
    "ca",
    "-config",
    "ext.cnf",
    "-out",
    "root.crt",
  );
  let issuer = "root";
  for (const [name, ext, serial] of [
    ["int1", "ca", "2"],
    ["int2", "ca", "3"],
    ["leaf", "leaf", "4"],
  ] as const) {
    key(name);
    run("req", "-new", "-key", `${name}.key`, "-subj", `/CN=${name === "leaf" ? "localhost" : name}`, "-out", `${name}.csr`);
    run(
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${issuer}.crt`,
      "-CAkey",
      `${issuer}.key`,
      "-extfile",
      "ext.cnf",
      "-extensions",
      ext,
      "-days",
      "2",
      "-set_serial",
      serial,
      "-out",
      `${name}.crt`,
    );
    issuer = name;
  }
  const read = (f: string) => readFileSync(join(dir, f), "utf8");
  return { dir, leaf: read("leaf.crt") + read("int2.crt") + read("int1.crt"), key: read("leaf.key") };
}

beforeAll(async () => {
  const dir = ensureCerts();
  const chain = deepChain();
  deep = createServer({ cert: chain.leaf, key: chain.key }, (_req, res) => res.end("deep"));
  await new Promise<void>((ok) => deep.listen(0, "127.0.0.1", () => ok()));
  const deepPort = (deep.address() as { port: number }).port;
  const depth = (name: string, value: number) =>
    serviceToml(
      name,
      `url = "https://localhost:${deepPort}"\nconnect_timeout = 2000\nread_timeout = 2000\nretries = 0\nca_certificates = ["${chain.dir}/root.crt"]\ntls_verify_depth = ${value}`,
    );
  // rejectUnauthorized: a request reaches the handler only over a handshake with a valid client certificate.
  upstream = createServer(
    { cert: cert("gateway.crt"), key: cert("gateway.key"), ca: cert("ca.crt"), requestCert: true, rejectUnauthorized: true },
    (_req, res) => {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ client_certificate: "verified" }));
    },
  );
  await new Promise<void>((ok) => upstream.listen(0, "127.0.0.1", () => ok()));
  port = (upstream.address() as { port: number }).port;
  const svc = (name: string, extra: string) =>
    serviceToml(
      name,
      `url = "https://127.0.0.1:${port}"\nconnect_timeout = 2000\nread_timeout = 2000\nretries = 0\nca_certificates = ["${dir}/ca.crt"]\n${extra}`,
    );
  const clientCertificate = `client_certificate = { cert = "${dir}/client.crt", key = "${dir}/client.key" }`;
  const probed = `[upstreams.healthchecks.active]
type = "https"
http_path = "/"
healthy = { interval = 0.2, successes = 1 }
unhealthy = { interval = 0.2, http_failures = 1, tcp_failures = 1, timeouts = 1 }`;
  const target = [`127.0.0.1:${port}`];
  gw = await startGateway({
    config: [
      serverTable(`trusted_certificates = ["${dir}/ca.crt"]`),
      upstreamToml("probed-with-cert", target, `${clientCertificate}\n${probed}`),
      upstreamToml("probed-without-cert", target, probed),
      upstreamToml("mtls-pool", target),
      upstreamToml("pool-with-cert", target, clientCertificate),
      svc("with-cert", clientCertificate),
      svc("without-cert", ""),
      depth("depth-1", 1),
      depth("depth-2", 2),
      serviceToml("upstream-cert", `url = "https://pool-with-cert"\nca_certificates = ["${dir}/ca.crt"]\nretries = 0`),
      serviceToml(
        "service-cert-wins",
        `url = "https://pool-with-cert"\nca_certificates = ["${dir}/ca.crt"]\n` +
          `client_certificate = { cert = "${dir}/other-client.crt", key = "${dir}/other-client.key" }\nread_timeout = 2000\nretries = 0`,
      ),
      serviceToml("balanced", `protocol = "https"\nhost = "mtls-pool"\nca_certificates = ["${dir}/ca.crt"]\n${clientCertificate}`),
    ].join("\n"),
  });
});

afterAll(async () => {
  await gw?.stop();
  upstream?.close();
  deep?.close();
});

/** The upstream that requires a client certificate answered: it verified the one the gateway presented. */
async function expectVerified(path: string): Promise<void> {
  const res = await fetch(`${gw.proxyUrl}${path}`);
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ client_certificate: "verified" });
}

/** The upstream refused the gateway's handshake: 502 at once, well before read_timeout (2000 ms) would give a 504. */
async function expectRefusedAtOnce(path: string): Promise<void> {
  const started = performance.now();
  const res = await fetch(`${gw.proxyUrl}${path}`);
  expect(res.status).toBe(502);
  // The TLS alert ends the attempt before read_timeout.
  expect(performance.now() - started).toBeLessThan(1900);
}

describe("mutual TLS to the upstream", () => {
  it("presents the service's client_certificate and trusts its ca_certificates: 200", () => expectVerified("/with-cert"));

  it("answers 502 at once (not read_timeout's 504) when the service has no client certificate for an upstream that requires one", () =>
    expectRefusedAtOnce("/without-cert"));

  it("does the same for a balanced service's targets", () => expectVerified("/balanced"));
});

describe("the upstream's client_certificate (Kong's upstreams.client_certificate)", () => {
  it("is presented to the targets of a service that has none of its own: 200", () => expectVerified("/upstream-cert"));

  it("gives way to the service's own client_certificate (here one the target refuses: 502)", () => expectRefusedAtOnce("/service-cert-wins"));
});

describe("the upstream's client_certificate on active https health checks", () => {
  it("keeps a target that wants a client certificate healthy when the upstream has one, and marks it unhealthy when not", async () => {
    const health = async (upstream: string) =>
      ((await (await fetch(`${gw.adminUrl}/upstreams/${upstream}/health`)).json()) as { data: { health: string }[] }).data[0]!.health;
    const deadline = Date.now() + 10_000;
    while ((await health("probed-without-cert")) !== "UNHEALTHY" && Date.now() < deadline) await Bun.sleep(100);
    expect(await health("probed-without-cert")).toBe("UNHEALTHY");
    expect(await health("probed-with-cert")).toBe("HEALTHY");
  });
});

describe("tls_verify_depth (the upstream's certificate under two intermediate CAs)", () => {
  it("proxies when the depth allows both intermediates", async () => {
    const res = await fetch(`${gw.proxyUrl}/depth-2`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("deep");
  });

  it("answers 502 when the chain is deeper than tls_verify_depth", async () => {
    const res = await fetch(`${gw.proxyUrl}/depth-1`);
    expect(res.status).toBe(502);
  });
});
