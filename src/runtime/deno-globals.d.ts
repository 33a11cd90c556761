/** The few Deno APIs the Deno edge uses, so the project type-checks without Deno's lib. */
declare namespace Deno {
  function upgradeWebSocket(request: Request, options?: { protocol?: string; idleTimeout?: number }): { socket: WebSocket; response: Response };
  interface ServeHandlerInfo {
    remoteAddr: { hostname: string; port: number };
  }
  interface HttpServer {
    finished: Promise<void>;
    addr: { hostname: string; port: number };
    shutdown(): Promise<void>;
  }
  interface ServeOptions {
    hostname?: string;
    port?: number;
    cert?: string;
    key?: string;
    reusePort?: boolean;
    onListen?: (addr: { hostname: string; port: number }) => void;
    onError?: (error: unknown) => Response | Promise<Response>;
  }
  interface HttpClient {
    close(): void;
  }
  function serve(options: ServeOptions, handler: (request: Request, info: ServeHandlerInfo) => Response | Promise<Response>): HttpServer;
  function createHttpClient(options: {
    caCerts?: string[];
    cert?: string;
    key?: string;
    proxy?: { url: string; basicAuth?: { username: string; password: string } };
  }): HttpClient;
  const version: { deno: string };
  const args: string[];
  function exit(code: number): never;
  function addSignalListener(signal: string, handler: () => void): void;
  function readTextFile(path: string): Promise<string>;
  function writeTextFile(path: string, data: string, options?: { mode?: number }): Promise<void>;
  function chmod(path: string, mode: number): Promise<void>;
  function rename(from: string, to: string): Promise<void>;
  function mkdir(path: string, options?: { recursive?: boolean; mode?: number }): Promise<void>;
  function stat(path: string): Promise<{ mode: number | null }>;
  const env: { get(name: string): string | undefined };
  const pid: number;
  const ppid: number;
  const mainModule: string;
  function execPath(): string;
  const permissions: { querySync(descriptor: { name: string }): { state: "granted" | "denied" | "prompt" } };
  interface CommandStatus {
    success: boolean;
    code: number;
    signal: string | null;
  }
  interface ChildProcess {
    readonly pid: number;
    readonly status: Promise<CommandStatus>;
    kill(signal?: string): void;
  }
  class Command {
    constructor(
      command: string,
      options?: {
        args?: string[];
        env?: Record<string, string>;
        stdin?: "null" | "inherit" | "piped";
        stdout?: "null" | "inherit" | "piped";
        stderr?: "null" | "inherit" | "piped";
      },
    );
    spawn(): ChildProcess;
  }
  function memoryUsage(): { rss: number };
  interface Conn {
    read(buffer: Uint8Array): Promise<number | null>;
    write(data: Uint8Array): Promise<number>;
    close(): void;
    setNoDelay?(noDelay?: boolean): void;
  }
  interface TlsConn extends Conn {
    handshake(): Promise<unknown>;
  }
  function connect(options: { hostname: string; port: number }): Promise<Conn>;
  function startTls(conn: Conn, options: { hostname: string; caCerts?: string[]; cert?: string; key?: string }): Promise<TlsConn>;
  function connectTls(options: { hostname: string; port: number; caCerts?: string[]; cert: string; key: string }): Promise<TlsConn>;
}
