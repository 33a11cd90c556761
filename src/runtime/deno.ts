/** The Deno edge: node:http listeners (node-listener.ts), `Deno.createHttpClient`. */
import { nodeCrypto } from "./builtins.ts";
import { listenNode } from "./node-listener.ts";
import { watchFile } from "./node-watch.ts";
import { jwsVerifier } from "./jws-verify.ts";
import { connect as runtimeConnect } from "./deno-socket.ts";
import { connectNode } from "./node-socket.ts";
import { tcpConnect } from "./tcp-connect.ts";
import type { ChildProcess, FetchLike, Listener, ListenOptions, OutboundTls, Runtime } from "./types.ts";

/**
 * Every Deno listener is node:http (src/runtime/node-listener.ts): Deno.serve bounds no header
 * or idle wait and caps no connections, so a slowloris held its connection for good there.
 */
function listen(options: ListenOptions): Promise<Listener> {
  return listenNode(options, true);
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
  hmacSha256: (key) => (data) => nodeCrypto().createHmac("sha256", key).update(data).digest("base64url"),
  sha256: (data) => nodeCrypto().createHash("sha256").update(data).digest(),
  jwsVerifier,
};
