/**
 * The mTLS listener end to end, on Bun and on Deno: the real gateway as a child process,
 * certificates from scripts/make-certs.sh (`make certs`), the echo upstream, and node's https client (one
 * connection per request, so a client certificate never rides on another's connection).
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { X509Certificate } from "node:crypto";
import * as https from "node:https";
import { cert as pem } from "../support/certs.ts";
import { startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { rawExchange } from "../support/raw-http.ts";
import { echoServiceToml, echoUpstreamForFile, listenerTargets, tlsServerConfig } from "../support/tls-gateway.ts";

const RUNTIMES = ["bun", "deno"] as const;

const upstream = echoUpstreamForFile();

function mtlsConfig(requireClientCert: boolean): string {
  return `${tlsServerConfig({ server: 'log_level = "debug"\nshutdown_timeout = 2000', tls: `require_client_cert = ${requireClientCert}` })}
${echoServiceToml(upstream.url)}`;
}

interface Answer {
  readonly status: number;
  readonly body: string;
}

/** One HTTPS request on its own connection, with an optional client certificate. */
function call(port: number, options: { cert?: string; key?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((done, fail) => {
    const request = https.request(
      {
        host: "127.0.0.1",
        servername: "localhost",
        port,
        path: "/mtls",
        method: "GET",
        agent: false,
        ca: pem("ca.crt"),
        ...(options.cert ? { cert: pem(options.cert), key: pem(options.key!) } : {}),
        headers: options.headers ?? {},
      },
      (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (d) => (body += d));
        response.on("end", () => done({ status: response.statusCode ?? 0, body }));
        response.on("error", fail);
      },
    );
    request.on("error", fail);
    request.end();
  });
}

/** Sends raw HTTP/1.1 bytes to the plain listener, or to the TLS one with the JohnDoe certificate; the first answer's status. */
async function raw(gateway: GatewayProcess, listener: "proxy" | "proxy_tls", text: string): Promise<{ status: number | undefined }> {
  const answer = await rawExchange(listenerTargets(gateway)[listener === "proxy" ? "plain" : "mtls"], text);
  return { status: answer.statuses[0] };
}

/** The `tls.client_certificate` debug line of one request, if the listener logged one. */
async function certLine(gateway: GatewayProcess, requestId: string): Promise<Record<string, any> | undefined> {
  // The access log line is written after the response, and after the certificate line.
  await gateway.waitForLog((l) => l.event === "http.request" && l.request_id === requestId);
  return gateway.logs().find((l) => l.event === "tls.client_certificate" && l.request_id === requestId);
}

const upstreamSaw = (requestId: string) => upstream.seen.find((s) => s.headers["x-request-id"] === requestId);

for (const runtime of RUNTIMES) {
  describe(`the mTLS listener on ${runtime}`, () => {
    let gateway: GatewayProcess;
    let strict: GatewayProcess;

    beforeAll(async () => {
      [gateway, strict] = await Promise.all([
        startGateway({ runtime, config: mtlsConfig(false) }),
        startGateway({ runtime, config: mtlsConfig(true) }),
      ]);
    }, 60_000);

    afterAll(async () => {
      await Promise.all([gateway?.stop(), strict?.stop()]);
    });

    it("proxies a request with the JohnDoe certificate and sees it as verified", async () => {
      const id = `${runtime}-johndoe-${crypto.randomUUID()}`;
      const answer = await call(gateway.ports.proxyTls, { cert: "client.crt", key: "client.key", headers: { "x-request-id": id } });
      expect(answer.status).toBe(200);
      expect(upstreamSaw(id)).toBeDefined();
      expect(await certLine(gateway, id)).toMatchObject({ subject: "CN=JohnDoe,OU=IT", verified: true });
    });

    it("sees a certificate from another CA as not verified", async () => {
      const id = `${runtime}-other-${crypto.randomUUID()}`;
      const answer = await call(gateway.ports.proxyTls, { cert: "other-client.crt", key: "other-client.key", headers: { "x-request-id": id } });
      expect(answer.status).toBe(200);
      expect(await certLine(gateway, id)).toMatchObject({ subject: "CN=JohnDoe,OU=IT", verified: false });
    });

    it("sees a self-signed certificate as not verified", async () => {
      const id = `${runtime}-self-${crypto.randomUUID()}`;
      await call(gateway.ports.proxyTls, { cert: "self-signed-client.crt", key: "self-signed-client.key", headers: { "x-request-id": id } });
      expect(await certLine(gateway, id)).toMatchObject({ verified: false });
    });

    it("proxies a request without a certificate when none is required, with no certificate seen", async () => {
      const id = `${runtime}-none-${crypto.randomUUID()}`;
      expect((await call(gateway.ports.proxyTls, { headers: { "x-request-id": id } })).status).toBe(200);
      expect(await certLine(gateway, id)).toBeUndefined();
    });

    it("never passes a caller's client certificate headers to the upstream", async () => {
      const id = `${runtime}-spoof-${crypto.randomUUID()}`;
      const spoofed = {
        "x-request-id": id,
        "x-forwarded-client-cert": 'Hash=abc;Subject="CN=admin"',
        "client-cert": ":MIIBspoofed:",
        "client-cert-chain": ":MIIBspoofed:",
        "x-ssl-client-cert": "spoofed",
        "x-client-cert": "spoofed",
      };
      expect((await call(gateway.ports.proxyTls, { cert: "other-client.crt", key: "other-client.key", headers: spoofed })).status).toBe(200);
      const seen = upstreamSaw(id)!;
      for (const name of Object.keys(spoofed).filter((n) => n !== "x-request-id")) expect(seen.headers[name]).toBeUndefined();
    });

    it("with require_client_cert, proxies the JohnDoe certificate", async () => {
      const id = `${runtime}-strict-ok-${crypto.randomUUID()}`;
      expect((await call(strict.ports.proxyTls, { cert: "client.crt", key: "client.key", headers: { "x-request-id": id } })).status).toBe(200);
      expect(upstreamSaw(id)).toBeDefined();
    });

    it("with require_client_cert, refuses a certificate from another CA and no certificate", async () => {
      for (const cert of ["other-client", "self-signed-client", undefined]) {
        const id = `${runtime}-strict-${cert}-${crypto.randomUUID()}`;
        const answer = await call(strict.ports.proxyTls, {
          ...(cert ? { cert: `${cert}.crt`, key: `${cert}.key` } : {}),
          headers: { "x-request-id": id },
        });
        expect(answer.status).toBe(400);
        expect(answer.body).toContain("client certificate");
        expect(upstreamSaw(id)).toBeUndefined();
      }
    });

    for (const listener of ["proxy", "proxy_tls"] as const) {
      it(`refuses on ${listener} a Host header that would move the routed path, with 400`, async () => {
        for (const host of ["evil.example/admin?", "user@evil.example", "evil.example#x", "a b"]) {
          const id = `${runtime}-${listener}-host-${crypto.randomUUID()}`;
          const answer = await raw(gateway, listener, `GET /mtls HTTP/1.1\r\nHost: ${host}\r\nX-Request-Id: ${id}\r\nConnection: close\r\n\r\n`);
          expect(answer.status).toBe(400);
          expect(upstreamSaw(id)).toBeUndefined();
        }
      });

      it(`refuses on ${listener} two Host headers (RFC 9112 §3.2)`, async () => {
        const answer = await raw(gateway, listener, "GET /mtls HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n");
        expect(answer.status).toBe(400);
      });

      it(`routes an absolute-form target on ${listener} by its own path`, async () => {
        const id = `${runtime}-${listener}-absolute-${crypto.randomUUID()}`;
        const answer = await raw(
          gateway,
          listener,
          `GET http://localhost/abs/path?q=1 HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: ${id}\r\nConnection: close\r\n\r\n`,
        );
        expect(answer.status).toBe(200);
        expect(upstreamSaw(id)?.path).toBe("/anything/abs/path?q=1");
      });
    }

    it("writes no certificate or key material to the log", () => {
      const text = [...gateway.output, ...strict.output].join("\n");
      expect(text).not.toContain("BEGIN");
      for (const name of ["client.crt", "other-client.crt"]) {
        const der = Buffer.from(new X509Certificate(pem(name)).raw).toString("base64");
        expect(text).not.toContain(der.slice(40, 100));
      }
    });
  });
}
