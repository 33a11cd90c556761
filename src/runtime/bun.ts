/** The Bun edge: `Bun.serve` for plain and TLS listeners, the node path for mTLS, Bun's fetch. */
import { chmod, mkdir, rename, stat, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { withSystemRoots } from "./system-roots.ts";
import { edgeRefusal } from "./request-target.ts";
import { handlerFailed } from "./handler-failure.ts";
import { watchFile } from "./node-watch.ts";
import { jwsVerifier } from "./jws-verify.ts";
import { tcpConnect } from "./tcp-connect.ts";
import {
  DEFAULT_LIMITS,
  type ChildProcess,
  type FetchLike,
  type Listener,
  type ListenOptions,
  type OutboundTls,
  type Runtime,
  type TlsFiles,
} from "./types.ts";
import { connect as runtimeConnect } from "./bun-socket.ts";
import { connectNode } from "./node-socket.ts";
import { nodeCrypto } from "./builtins.ts";
import { BUN_UPGRADED, bunUpgrade, bunWebSocketHandlers, wantsWebSocket } from "./websocket-edge.ts";

/** Bun takes an array for SNI: the first entry is the default, the others carry a serverName. */
function bunTls(tls: TlsFiles) {
  if (!tls.certificates?.length) return { cert: tls.cert, key: tls.key };
  return [
    { cert: tls.cert, key: tls.key },
    ...tls.certificates.flatMap((c) => c.snis.map((serverName) => ({ cert: c.cert, key: c.key, serverName }))),
  ];
}

async function listen(options: ListenOptions): Promise<Listener> {
  // Loaded for mTLS and strict_listener only: node:http and node:tls cost every other start ~40 ms of CPU.
  if (options.tls?.clientCa || options.strict) return (await import("./node-listener.ts")).listenNode(options);
  const { handler } = options;
  // Known once listening (port 0 picks one); `server.port` asks the kernel (getsockname) on every read.
  let localPort = options.port;
  const server = Bun.serve({
    hostname: options.hostname,
    port: options.port,
    reusePort: options.reusePort ?? false,
    // Streaming bodies have their own limits; Bun's default would cut large uploads.
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    // Whole seconds, at most 255; 0 would turn the idle bound off, so at least 1.
    idleTimeout: Math.min(255, Math.max(1, Math.ceil((options.limits ?? DEFAULT_LIMITS).keepaliveTimeout / 1000))),
    ...(options.tls ? { tls: bunTls(options.tls) } : {}),
    fetch(request, srv) {
      const refused = edgeRefusal(request.method, request.headers);
      if (refused) return refused;
      const peer = srv.requestIP(request);
      const conn = { remoteAddress: peer?.address ?? "", remotePort: peer?.port, localAddress: options.hostname, localPort, tls: !!options.tls };
      if (!wantsWebSocket(request.headers)) return handler(request, conn);
      // After an upgrade Bun has answered 101 itself: the callback must return nothing.
      return Promise.resolve(handler(request, { ...conn, upgrade: bunUpgrade(srv as never, request) })).then((r) =>
        r === BUN_UPGRADED ? undefined : r,
      ) as Promise<Response>;
    },
    websocket: bunWebSocketHandlers as never,
    error(error) {
      return handlerFailed(options, error, undefined);
    },
  });
  localPort = server.port ?? options.port;
  return {
    hostname: options.hostname,
    port: localPort,
    async stop(graceMs: number) {
      const graceful = server.stop(false);
      const timedOut = await Promise.race([graceful.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), graceMs))]);
      if (timedOut) await server.stop(true);
    },
  };
}

function tlsOptions(tls: OutboundTls) {
  return {
    ...(tls.ca?.length ? { ca: withSystemRoots(tls.ca) } : {}),
    ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
    ...(tls.verify === false ? { rejectUnauthorized: false } : {}),
  };
}

function createUpstreamFetch(tls: OutboundTls): FetchLike {
  const options = tlsOptions(tls);
  const extra = Object.keys(options).length ? { tls: options } : {};
  return (input, init) => fetch(input, { ...init, ...extra, decompress: false, redirect: "manual" } as RequestInit & { decompress: boolean });
}

function createFetch(tls: OutboundTls): FetchLike {
  const options = tlsOptions(tls);
  const extra = { ...(Object.keys(options).length ? { tls: options } : {}), ...(tls.proxy ? { proxy: tls.proxy } : {}) };
  if (Object.keys(extra).length === 0) return (input, init) => fetch(input, init);
  return (input, init) => fetch(input, { ...init, ...extra } as RequestInit);
}

/**
 * The command that runs this program again: a compiled binary embeds its entry (`Bun.main` is
 * under `/$bunfs/`), `bun src/main.ts` needs the runtime flags and the entry script.
 */
function selfCommand(): string[] {
  const compiled = Bun.main.startsWith("/$bunfs/") || Bun.main.startsWith("B:/~BUN/");
  return compiled ? [process.execPath] : [process.execPath, ...process.execArgv, Bun.main];
}

function spawnSelf(args: readonly string[], env: Readonly<Record<string, string>>): ChildProcess {
  const proc = Bun.spawn([...selfCommand(), ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit"] });
  return {
    pid: proc.pid,
    exited: proc.exited.then(() => (proc.signalCode ? { code: null, signal: String(proc.signalCode) } : { code: proc.exitCode, signal: null })),
    kill: (signal) => proc.kill(signal),
  };
}

export const bunRuntime: Runtime = {
  name: "bun",
  version: Bun.version,
  listen,
  createUpstreamFetch,
  // A chain depth limit needs the verified chain, which only node:tls reports.
  connect: (options, events) => (options.tls?.verifyDepth !== undefined ? connectNode(options, events) : runtimeConnect(options, events)),
  createFetch,
  tcpConnect,
  readTextFile: (path) => Bun.file(path).text(),
  async writeFileAtomic(path, data, mode) {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
    await writeFile(tmp, data, { mode });
    await chmod(tmp, mode);
    await rename(tmp, path);
  },
  async fileMode(path) {
    try {
      return (await stat(path)).mode & 0o777;
    } catch {
      return undefined;
    }
  },
  watchFile,
  onSignal: (signal, handler) => void process.on(signal, handler),
  exit: (code) => process.exit(code),
  args: () => Bun.argv.slice(2),
  env: (name) => process.env[name],
  memoryRss: () => process.memoryUsage.rss(),
  spawnSelf,
  pid: () => process.pid,
  parentPid: () => process.ppid,
  // Bun's own hasher: the same digests as node:crypto's createHmac at ~60 % of its cost (1 KiB tokens).
  hmacSha256: (key) => (data) => new Bun.CryptoHasher("sha256", key).update(data).digest("base64url"),
  sha256: (data) => nodeCrypto().createHash("sha256").update(data).digest(),
  jwsVerifier,
  parseToml: (text) => Bun.TOML.parse(text),
};
