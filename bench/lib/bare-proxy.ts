/**
 * The floor for a Bun + fetch() proxy: what a gateway written this way cannot beat. Reads the
 * same gateway.toml (proxy_listen, admin_listen, the first service) and forwards every request
 * with fetch, nothing else: no routing, no header hygiene, no timeouts.
 *   bun bench/bench.ts --only 2,3 --compare bench/lib/bare-proxy.ts
 */
import { readFileSync } from "node:fs";
import { parse } from "smol-toml";

const file = Bun.argv[Bun.argv.indexOf("--config") + 1]!;
const config = parse(readFileSync(file, "utf8")) as { server: { proxy_listen: string; admin_listen: string }; services: { url: string }[] };
const [host, port] = config.server.proxy_listen.split(":") as [string, string];
const [adminHost, adminPort] = config.server.admin_listen.split(":") as [string, string];
const origin = config.services[0]!.url.replace(/\/$/, "");

Bun.serve({
  hostname: host,
  port: Number(port),
  fetch(req) {
    const url = req.url;
    return fetch(origin + url.slice(url.indexOf("/", 8)), {
      method: req.method,
      headers: req.headers,
      body: req.body,
      redirect: "manual",
      decompress: false,
    } as RequestInit);
  },
});
Bun.serve({ hostname: adminHost, port: Number(adminPort), fetch: () => Response.json({ status: "ok" }) });
