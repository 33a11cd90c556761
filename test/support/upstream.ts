/**
 * An httpbin-like echo upstream for `make run` and the tests. `/anything[/...]` answers with the
 * request as JSON; a few test paths make it slow, stream, count bytes or fail.
 * Run standalone: `bun test/support/upstream.ts [port]` (default 9000).
 */

export interface EchoUpstream {
  readonly url: string;
  readonly port: number;
  /** Requests seen, newest last (headers lower-cased). */
  readonly seen: { method: string; path: string; headers: Record<string, string> }[];
  stop(): Promise<void>;
}

function headersObject(h: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  h.forEach((v, k) => {
    out[k] = v;
  });
  return out;
}

export function startEchoUpstream(port = 0, hostname = "127.0.0.1"): EchoUpstream {
  const seen: EchoUpstream["seen"] = [];
  const server = Bun.serve({
    hostname,
    port,
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    idleTimeout: 0,
    async fetch(req, srv) {
      const url = new URL(req.url);
      seen.push({ method: req.method, path: url.pathname + url.search, headers: headersObject(req.headers) });
      if (seen.length > 1000) seen.shift();
      if (url.pathname.startsWith("/delay/")) {
        await Bun.sleep(Number(url.pathname.split("/")[2]) * 1000);
        return Response.json({ delayed: true });
      }
      if (url.pathname === "/count") {
        // Reads the whole body as a stream and reports its size and a checksum.
        let bytes = 0;
        let sum = 0;
        for await (const chunk of req.body ?? []) {
          bytes += chunk.length;
          for (let i = 0; i < chunk.length; i += 4096) sum = (sum + chunk[i]!) % 1_000_000_007;
        }
        return Response.json({ bytes, sum });
      }
      if (url.pathname.startsWith("/bytes/")) {
        const total = Number(url.pathname.split("/")[2]);
        const chunk = new Uint8Array(64 * 1024).fill(120);
        let sent = 0;
        return new Response(
          new ReadableStream({
            pull(c) {
              if (sent >= total) return c.close();
              const n = Math.min(chunk.length, total - sent);
              c.enqueue(chunk.subarray(0, n));
              sent += n;
            },
          }),
          { headers: { "content-type": "application/octet-stream" } },
        );
      }
      if (url.pathname === "/stall-body") {
        return new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(new TextEncoder().encode("partial"));
            },
          }),
        );
      }
      if (url.pathname === "/hop-by-hop") {
        return new Response("ok", {
          headers: { connection: "x-upstream-private", "x-upstream-private": "secret-ish", "keep-alive": "timeout=5", "x-kept": "yes" },
        });
      }
      // Which process answered: the load-balancing suites count targets by it.
      if (url.pathname.endsWith("/whoami")) return new Response(String(srv.port));
      if (url.pathname.startsWith("/status/")) return new Response(null, { status: Number(url.pathname.split("/")[2]) });
      const body = req.body ? await req.text() : "";
      return Response.json({
        method: req.method,
        url: req.url,
        path: url.pathname,
        args: Object.fromEntries(url.searchParams),
        headers: headersObject(req.headers),
        origin: srv.requestIP(req)?.address ?? null,
        data: body,
      });
    },
  });
  return {
    url: `http://${hostname}:${server.port}`,
    port: server.port ?? port,
    seen,
    stop: () => server.stop(true),
  };
}

if (import.meta.main) {
  const port = Number(Bun.argv[2] ?? 9000);
  try {
    const upstream = startEchoUpstream(port);
    console.log(JSON.stringify({ event: "upstream.ready", url: upstream.url }));
  } catch (error) {
    if ((error as { code?: string }).code !== "EADDRINUSE") throw error;
    console.error(`echo upstream: port ${port} is in use (stop what listens there, e.g. another make run)`);
    process.exit(1);
  }
}
