/** Listeners: TLS on proxy_tls_listen, and the same source started under Deno. */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { cert, ensureCerts } from "../support/certs.ts";
import { simpleConfig, startGateway } from "../support/gateway-process.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

let upstream: EchoUpstream;
beforeAll(() => {
  upstream = startEchoUpstream();
});
afterAll(() => upstream?.stop());

function tlsConfig(): string {
  const dir = ensureCerts();
  return simpleConfig(upstream.url).replace(
    "shutdown_timeout = 5000",
    `shutdown_timeout = 5000\nproxy_tls_listen = "127.0.0.1:{{proxy_tls}}"\n\n[server.tls]\ncert = "${dir}/gateway.crt"\nkey = "${dir}/gateway.key"\n`,
  );
}

describe("the TLS proxy listener", () => {
  it("serves HTTPS with the configured certificate and tells the upstream it was https", async () => {
    const gw = await startGateway({ config: tlsConfig() });
    try {
      const res = await fetch(`${gw.proxyTlsUrl}/anything`, { tls: { ca: cert("ca.crt") } } as RequestInit);
      expect(res.status).toBe(200);
      const echo = (await res.json()) as { headers: Record<string, string> };
      expect(echo.headers["x-forwarded-proto"]).toBe("https");
      expect(echo.headers["x-forwarded-port"]).toBe(String(gw.ports.proxyTls));
    } finally {
      await gw.stop();
    }
  });

  it("is refused by a client that does not trust the dev CA", async () => {
    const gw = await startGateway({ config: tlsConfig() });
    try {
      await expect(fetch(`${gw.proxyTlsUrl}/anything`)).rejects.toThrow();
    } finally {
      await gw.stop();
    }
  });
});

describe("the same source under Deno", () => {
  it("starts with `deno run -A src/main.ts` and proxies", async () => {
    const gw = await startGateway({ config: simpleConfig(upstream.url), runtime: "deno" });
    try {
      const res = await fetch(`${gw.proxyUrl}/anything?from=deno`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { args: Record<string, string> }).args).toEqual({ from: "deno" });
      const status = (await (await fetch(`${gw.adminUrl}/status`)).json()) as { runtime: string };
      expect(status.runtime).toStartWith("deno ");
    } finally {
      expect(await gw.stop()).toBe(0);
    }
  }, 60_000);
});
