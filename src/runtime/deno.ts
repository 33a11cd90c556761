/** The Deno edge: `Deno.serve` for plain and TLS listeners, the node path for mTLS, `Deno.createHttpClient`. */
import { createHash, createHmac } from "node:crypto";
import { listenNode } from "./node-listener.ts";
import { absoluteAuthority, badRequest, edgeRefusal } from "./request-target.ts";
import { watchFile } from "./node-watch.ts";
import { connect as runtimeConnect } from "./deno-socket.ts";
import { connectNode } from "./node-socket.ts";
import { tcpConnect } from "./tcp-connect.ts";
import { denoUpgrade, wantsWebSocket } from "./websocket-edge.ts";
import type { ChildProcess, FetchLike, Listener, ListenOptions, OutboundTls, Runtime } from "./types.ts";

async function listen(options: ListenOptions): Promise<Listener> {
  // Deno.serve has one certificate: SNI certificates need the node:tls listener's SNICallback.
  if (options.tls?.clientCa || options.tls?.certificates?.length) return listenNode(options);
  const { handler } = options;
  let port = options.port;
  const scheme = options.tls ? "https://" : "http://";
  const listening = Promise.withResolvers<void>();
  const server = Deno.serve(
    {
      hostname: options.hostname,
      port: options.port,
      reusePort: options.reusePort ?? false,
      ...(options.tls ? { cert: options.tls.cert, key: options.tls.key } : {}),
      onListen: (addr) => {
        port = addr.port;
        listening.resolve();
      },
      onError: () => new Response('{"message":"An unexpected error occurred"}', { status: 500, headers: { "content-type": "application/json" } }),
    },
    (incoming, info) => {
      let request = incoming;
      const refused = edgeRefusal(request.method, request.headers);
      if (refused) return refused;
      const host = request.headers.get("host")!;
      // Deno keeps an absolute-form target as the URL: its authority is the request's host (RFC 9112 §3.2.2).
      if (!request.url.startsWith(`${scheme}${host}/`)) {
        const authority = absoluteAuthority(request.url);
        if (!authority) return badRequest("invalid request target");
        if (authority !== host) {
          const headers = new Headers(request.headers);
          headers.set("host", authority);
          request = new Request(request, { headers });
        }
      }
      const conn = {
        remoteAddress: info.remoteAddr.hostname,
        remotePort: info.remoteAddr.port,
        localAddress: options.hostname,
        localPort: port,
        tls: !!options.tls,
      };
      return handler(request, wantsWebSocket(request.headers) ? { ...conn, upgrade: denoUpgrade(request) } : conn);
    },
  );
  await listening.promise;
  return {
    hostname: options.hostname,
    get port() {
      return port;
    },
    async stop(graceMs: number) {
      await Promise.race([server.shutdown(), new Promise((r) => setTimeout(r, graceMs))]);
    },
  };
}

/**
 * Deno's fetch decompresses only when it added `Accept-Encoding` itself; a proxied request
 * carries the caller's header (or an explicit `identity`), so bodies pass through as sent.
 */
function createUpstreamFetch(tls: OutboundTls): FetchLike {
  const base = createFetch(tls);
  return (input, init) => {
    const headers = new Headers(init?.headers);
    if (!headers.has("accept-encoding")) headers.set("accept-encoding", "identity");
    return base(input, { ...init, headers, redirect: "manual" });
  };
}

/** Deno takes a proxy's credentials apart from its URL. */
function denoProxy(url: string): { url: string; basicAuth?: { username: string; password: string } } {
  const u = new URL(url);
  if (!u.username) return { url };
  const basicAuth = { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
  u.username = "";
  u.password = "";
  return { url: u.href, basicAuth };
}

function createFetch(tls: OutboundTls): FetchLike {
  if (tls.verify === false) {
    // Deno can only disable verification process-wide (--unsafely-ignore-certificate-errors).
    console.error(
      JSON.stringify({
        level: "warn",
        event: "runtime.ssl_verify_ignored",
        message: "'ssl_verify = false' needs --unsafely-ignore-certificate-errors on Deno",
      }),
    );
  }
  if (!tls.ca?.length && !tls.cert && !tls.proxy) return (input, init) => fetch(input, init);
  const client = Deno.createHttpClient({
    ...(tls.ca?.length ? { caCerts: [...tls.ca] } : {}),
    ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
    ...(tls.proxy ? { proxy: denoProxy(tls.proxy) } : {}),
  });
  return (input, init) => fetch(input, { ...init, client } as RequestInit);
}

const PERMISSIONS = ["read", "write", "net", "env", "run", "sys", "ffi"] as const;

/**
 * The command that runs this program again: a `deno compile`d binary is its own entry; under
 * `deno run` the child gets the permissions this process holds in full (`-A` when all of them).
 * Grants limited to some paths or hosts are not carried over: such a worker fails at start.
 */
function selfCommand(): { cmd: string; args: string[] } {
  const cmd = Deno.execPath();
  if (!/(^|[\\/])deno(\.exe)?$/.test(cmd)) return { cmd, args: [] };
  const granted = PERMISSIONS.filter((name) => Deno.permissions.querySync({ name }).state === "granted");
  const flags = granted.length === PERMISSIONS.length ? ["-A"] : granted.map((name) => `--allow-${name}`);
  // Workers listen with `reusePort`, which Deno still ships behind --unstable-net.
  return { cmd, args: ["run", ...flags, "--unstable-net", Deno.mainModule] };
}

function spawnSelf(args: readonly string[], env: Readonly<Record<string, string>>): ChildProcess {
  const self = selfCommand();
  const child = new Deno.Command(self.cmd, {
    args: [...self.args, ...args],
    env: { ...env },
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  return {
    pid: child.pid,
    exited: child.status.then((s) => ({ code: s.signal ? null : s.code, signal: s.signal })),
    kill: (signal) => {
      try {
        child.kill(signal);
      } catch {
        // already exited
      }
    },
  };
}

export const denoRuntime: Runtime = {
  name: "deno",
  version: Deno.version.deno,
  listen,
  createUpstreamFetch,
  // A chain depth limit needs the verified chain, which only node:tls reports.
  connect: (options, events) => (options.tls?.verifyDepth !== undefined ? connectNode(options, events) : runtimeConnect(options, events)),
  createFetch,
  tcpConnect,
  readTextFile: (path) => Deno.readTextFile(path),
  async writeFileAtomic(path, data, mode) {
    const dir = path.lastIndexOf("/") > 0 ? path.slice(0, path.lastIndexOf("/")) : ".";
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.${Deno.pid}.${Date.now()}.tmp`;
    await Deno.writeTextFile(tmp, data, { mode });
    await Deno.chmod(tmp, mode);
    await Deno.rename(tmp, path);
  },
  async fileMode(path) {
    try {
      const mode = (await Deno.stat(path)).mode;
      return mode === null ? undefined : mode & 0o777;
    } catch {
      return undefined;
    }
  },
  watchFile,
  onSignal: (signal, handler) => Deno.addSignalListener(signal, handler),
  exit: (code) => Deno.exit(code),
  args: () => Deno.args,
  env: (name) => Deno.env.get(name),
  memoryRss: () => Deno.memoryUsage().rss,
  spawnSelf,
  pid: () => Deno.pid,
  parentPid: () => Deno.ppid,
  hmacSha256: (key) => (data) => createHmac("sha256", key).update(data).digest("base64url"),
  sha256: (data) => createHash("sha256").update(data).digest(),
};
