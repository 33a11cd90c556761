/**
 * Starts the real gateway as a child process for end-to-end suites: the compiled binary
 * (`dist/oidc-gateway`, the default), or the source under Bun or Deno. Writes the given
 * gateway.toml into a fresh temp folder, picks free ports, waits for `/status`, keeps the
 * log lines, and stops the process with SIGTERM.
 */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export type GatewayRuntime = "binary" | "bun" | "deno";

const ROOT = resolve(import.meta.dir, "../..");

/** The runtime the e2e suites run against: `GATEWAY_RUNTIME=binary|bun|deno` (default binary). */
export const defaultRuntime = (process.env.GATEWAY_RUNTIME as GatewayRuntime | undefined) ?? "binary";

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => ok(port));
    });
  });
}

export interface GatewayProcess {
  readonly proxyUrl: string;
  readonly adminUrl: string;
  readonly proxyTlsUrl: string | undefined;
  readonly ports: { proxy: number; admin: number; proxyTls: number };
  readonly dir: string;
  readonly configPath: string;
  /** Every line the gateway wrote to stdout and stderr so far. */
  readonly output: string[];
  /** The stdout lines parsed as JSON (log records). */
  logs(): Record<string, any>[];
  /** Resolves with the first log record that satisfies `predicate`. */
  waitForLog(predicate: (line: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>;
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number>;
  readonly exited: Promise<number>;
}

export interface StartOptions {
  /** The TOML text; `{{proxy}}`, `{{admin}}`, `{{proxy_tls}}` and `{{dir}}` are replaced. */
  readonly config: string;
  readonly runtime?: GatewayRuntime;
  /** Extra files to write next to gateway.toml. */
  readonly files?: Record<string, string>;
  readonly env?: Record<string, string>;
  /** Wait for the admin API (default true; false when the admin API is off). */
  readonly waitForAdmin?: boolean;
}

function command(runtime: GatewayRuntime, configPath: string): string[] {
  switch (runtime) {
    case "binary":
      return [join(ROOT, "dist/oidc-gateway"), "--config", configPath];
    case "bun":
      return [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "src/main.ts"), "--config", configPath];
    case "deno":
      return [
        join(ROOT, "node_modules/.bin/deno"),
        "run",
        "-A",
        "--quiet",
        "--unstable-no-legacy-abort",
        join(ROOT, "src/main.ts"),
        "--config",
        configPath,
      ];
  }
}

/** Starts on fresh ports again when one was taken meanwhile (freePort only found it free): at most this many starts. */
const MAX_STARTS = 5;

/**
 * Starts the gateway and, unless `waitForAdmin` is false, waits until its admin API answers.
 * Ports are picked free but bound only by the gateway, so another suite may take one in between:
 * a gateway that exits with EADDRINUSE for one of them before it is ready (its admin API answers,
 * or it logs gateway.started when `waitForAdmin` is false) is started again on fresh ports (every
 * templated listener), up to MAX_STARTS times. A port the suite chose itself is never retried.
 */
export async function startGateway(options: StartOptions): Promise<GatewayProcess> {
  for (let start = 1; ; start++) {
    const started = await launch(options);
    if (!("error" in started)) return started;
    if (!started.portTaken || start >= MAX_STARTS) throw started.error;
  }
}

/** One start on freshly picked ports: the gateway once ready, or why not (`portTaken` when a port it was given was bound meanwhile). */
async function launch(options: StartOptions): Promise<GatewayProcess | { readonly portTaken: boolean; readonly error: Error }> {
  const dir = mkdtempSync(join(tmpdir(), "oidc-gateway-"));
  // Three distinct ports: the OS may hand the same free port out twice in a row.
  const picked = new Set<number>();
  while (picked.size < 3) picked.add(await freePort());
  const [proxy, admin, proxyTls] = [...picked] as [number, number, number];
  const ports = { proxy, admin, proxyTls };
  const text = options.config
    .replaceAll("{{proxy}}", String(ports.proxy))
    .replaceAll("{{admin}}", String(ports.admin))
    .replaceAll("{{proxy_tls}}", String(ports.proxyTls))
    .replaceAll("{{dir}}", dir);
  const configPath = join(dir, "gateway.toml");
  writeFileSync(configPath, text);
  recordSecrets(text);
  for (const [name, content] of Object.entries(options.files ?? {})) writeFileSync(join(dir, name), content);

  const output: string[] = [];
  const listeners: (() => void)[] = [];
  const proc = Bun.spawn(command(options.runtime ?? defaultRuntime, configPath), {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdout: "pipe",
    stderr: "pipe",
  });
  let pumpsDone = 0;
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    let buffer = "";
    const decoder = new TextDecoder();
    for await (const bytes of stream) {
      buffer += decoder.decode(bytes, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        output.push(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        for (const l of listeners) l();
      }
    }
    if (buffer) output.push(buffer);
    if (++pumpsDone === 2) recordLog(output);
  };
  const pumped = Promise.all([pump(proc.stdout), pump(proc.stderr)]);

  const logs = () =>
    output.flatMap((l) => {
      try {
        const v = JSON.parse(l);
        return v && typeof v === "object" ? [v] : [];
      } catch {
        return [];
      }
    });

  const gw: GatewayProcess = {
    proxyUrl: `http://127.0.0.1:${ports.proxy}`,
    adminUrl: `http://127.0.0.1:${ports.admin}`,
    proxyTlsUrl: text.includes(String(ports.proxyTls)) ? `https://localhost:${ports.proxyTls}` : undefined,
    ports,
    dir,
    configPath,
    output,
    logs,
    waitForLog(predicate, timeoutMs = 10_000) {
      return new Promise((ok, fail) => {
        const check = () => {
          const hit = logs().find(predicate);
          if (hit) {
            clearTimeout(timer);
            listeners.splice(listeners.indexOf(check), 1);
            ok(hit);
          }
        };
        const timer = setTimeout(() => {
          listeners.splice(listeners.indexOf(check), 1);
          fail(new Error(`no matching log line within ${timeoutMs} ms:\n${output.slice(-20).join("\n")}`));
        }, timeoutMs);
        listeners.push(check);
        check();
      });
    },
    signal: (sig) => proc.kill(sig),
    async stop() {
      proc.kill("SIGTERM");
      const code = await proc.exited;
      // Its folder (config, files, the key file it wrote): a suite reads it while the gateway runs, never after.
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
    exited: proc.exited,
  };

  /** It exited before it was ready: because a port picked for it (in the config) was taken meanwhile? */
  const exitedEarly = async () => {
    await pumped; // all it wrote, EADDRINUSE included
    const error = new Error(`gateway exited with ${proc.exitCode}:\n${output.join("\n")}`);
    const taken = Object.values(ports).filter((port) => text.includes(String(port)));
    const portTaken = output.some((l) => l.includes("EADDRINUSE") && taken.some((port) => new RegExp(`\\b${port}\\b`).test(l)));
    if (portTaken) rmSync(dir, { recursive: true, force: true }); // started again in a new folder
    return { portTaken, error };
  };

  if (options.waitForAdmin !== false) {
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (proc.exitCode !== null) return exitedEarly();
      try {
        if ((await fetch(`${gw.adminUrl}/status`)).ok) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        proc.kill("SIGKILL");
        return { portTaken: false, error: new Error(`gateway did not start within 30 s:\n${output.join("\n")}`) };
      }
      await Bun.sleep(50);
    }
  } else {
    // No admin API to ask: started (listening) or exited, whichever comes first; the suite checks which.
    const started = gw
      .waitForLog((l) => l.event === "gateway.started", 30_000)
      .then(
        () => true,
        () => false,
      );
    if (!(await Promise.race([started, proc.exited.then(() => false)])) && proc.exitCode !== null) {
      const early = await exitedEarly();
      if (early.portTaken) return early;
    }
  }
  return gw;
}

/**
 * The run-wide log audit (`make test`): with OIDC_GATEWAY_AUDIT_DIR set, every gateway's output
 * and every secret its config holds are collected there, and test/audit/ checks at the end of
 * the run that no secret and no token ever reached a gateway's log.
 */
const AUDIT_DIR = process.env.OIDC_GATEWAY_AUDIT_DIR;
const SECRET_SETTING = /^\s*(client_secret|cache_tokens_salt|dpop_nonce_secret|keys_secret|password|secret)\s*=\s*"([^"]{8,})"/gm;

function recordSecrets(configText: string): void {
  if (!AUDIT_DIR) return;
  // A vault reference names a secret (errors name it on purpose); the value it resolves to is the secret.
  const found = [...configText.matchAll(SECRET_SETTING)].map((m) => m[2]!).filter((v) => !v.startsWith("{vault://"));
  if (found.length) appendFileSync(join(AUDIT_DIR, "secrets.txt"), found.join("\n") + "\n");
}

/** Called once per gateway, when both its stdout and stderr have ended. */
function recordLog(output: string[]): void {
  if (!AUDIT_DIR) return;
  appendFileSync(join(AUDIT_DIR, "gateway.log"), output.join("\n") + "\n");
}

/** The `[server]` table most suites start with: proxy and admin API on the ports picked, a 2 s shutdown, then `lines`. */
export function serverTable(lines = ""): string {
  return `[server]
proxy_listen = "127.0.0.1:{{proxy}}"
admin_listen = "127.0.0.1:{{admin}}"
shutdown_timeout = 2000
${lines ? `${lines}\n` : ""}`;
}

/** A minimal gateway.toml with one service and one route; extra TOML is appended. */
export function simpleConfig(upstreamUrl: string, extra = ""): string {
  return `[server]
proxy_listen = "127.0.0.1:{{proxy}}"
admin_listen = "127.0.0.1:{{admin}}"
shutdown_timeout = 5000

[[services]]
name = "echo"
url = "${upstreamUrl}"
connect_timeout = 2000
read_timeout = 2000

[[routes]]
name = "all"
service = "echo"
paths = ["/"]
${extra}`;
}
