/**
 * A handler that throws past the pipeline's own error mapping is our failure (project rule 4):
 * every listener answers 500 with a request id, and the gateway logs the failure under that id,
 * with no token or secret in the line. The failure here is a real one: the keys file cannot be
 * written, so the JWKS at `[keys] publish_path` (served before routing) throws.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { startGateway, type GatewayProcess } from "../support/gateway-process.ts";
import { rawExchange } from "../support/raw-http.ts";
import { echoServiceToml, echoUpstreamForFile, LISTENER_GATEWAYS, listenerTargets, tlsServerConfig } from "../support/tls-gateway.ts";

const upstream = echoUpstreamForFile();
const TOKEN = "a-caller-token-that-must-not-be-logged";

function config(server: string): string {
  return `${tlsServerConfig({ server: `shutdown_timeout = 2000\n${server}` })}
[keys]
jwks_file = "/proc/no-such-dir/gateway-jwks.json"
publish_path = "/jwks"

${echoServiceToml(upstream.url)}`;
}

for (const { name, runtime, server, bunServe } of LISTENER_GATEWAYS) {
  describe(`a handler that throws, on ${name}`, () => {
    let gateway: GatewayProcess;

    beforeAll(async () => {
      gateway = await startGateway({ runtime, config: config(server) });
    }, 60_000);
    afterAll(async () => {
      await gateway?.stop();
    });

    for (const listener of ["plain", "mtls"] as const) {
      it(`is answered 500 on the ${listener} listener and logged once under the request id answered`, async () => {
        const answer = await rawExchange(
          listenerTargets(gateway)[listener],
          `GET /jwks?access_token=${TOKEN} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${TOKEN}\r\nConnection: close\r\n\r\n`,
          3000,
        );
        expect(answer.statuses).toEqual([500]);
        const requestId = /\r\nx-request-id: ([^\r]+)\r\n/i.exec(answer.text)?.[1];
        expect(requestId).toBeDefined();
        const line = await gateway.waitForLog((l) => l.event === "listener.handler_failed" && l.request_id === requestId, 5000);
        expect(line.level).toBe("error");
        // Bun.serve's error callback is not given the request: a fresh id, no method or path.
        expect(line.path).toBe(bunServe && listener === "plain" ? undefined : "/jwks");
        await Bun.sleep(100);
        expect(gateway.logs().filter((l) => l.request_id === requestId && l.level === "error")).toHaveLength(1);
        expect(line.error?.message).toBeString();
        expect(gateway.output.join("\n")).not.toContain(TOKEN);
      });
    }

    it("still serves other requests", async () => {
      const answer = await rawExchange(listenerTargets(gateway).plain, "GET /a HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
      expect(answer.statuses).toEqual([200]);
    });
  });
}
