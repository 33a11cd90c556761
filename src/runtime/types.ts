/**
 * The runtime edge: everything the core needs from Bun or Deno, and nothing more.
 * The core (config, gateway, plugins, oidc) speaks web APIs and this interface only.
 */

/** A client certificate presented in the TLS handshake of the current connection. */
export interface PeerCertificate {
  /** DER bytes of the leaf certificate (RFC 8705 thumbprints are computed over these). */
  readonly der: Uint8Array;
  /** Subject distinguished name, RFC 4514 order (e.g. `CN=JohnDoe,OU=IT`). */
  readonly subject: string;
  /** True when the chain was verified against `[server.tls] client_ca` by the edge (or by a trusted load balancer). */
  readonly verified: boolean;
  /** RFC 8705 `x5t#S256`, when a trusted load balancer forwarded only the certificate's hash (XFCC `Hash=`). */
  readonly sha256?: string;
}

/** What the listener knows about the connection a request arrived on. */
export interface ConnInfo {
  readonly remoteAddress: string;
  /** The client's port, where the runtime reports it (routes' `sources`). */
  readonly remotePort?: number;
  /** The address the connection arrived on (or the listener's bound address), for routes' `destinations`. */
  readonly localAddress?: string;
  /** The TLS server name (SNI) the client sent, where the runtime reports it (routes' `snis`). */
  readonly serverName?: string;
  /** The port of the listener that accepted the connection (for `X-Forwarded-Port`). */
  readonly localPort: number;
  readonly tls: boolean;
  readonly peerCertificate?: PeerCertificate;
  /**
   * Present on a WebSocket opening handshake the listener can take over: answers 101 and hands
   * the caller's socket to `session`. The returned Response is what the handler returns.
   */
  readonly upgrade?: (session: WebSocketSession, options: { readonly protocol?: string }) => Response;
}

/** The caller's end of a WebSocket, as the listener holds it. */
export interface CallerWebSocket {
  /** False when the message was queued over the send buffer's limit: wait for `drain`. */
  send(data: string | Uint8Array): boolean;
  close(code?: number, reason?: string): void;
  /** Stop and restart reading the caller's messages (backpressure towards it); absent where the runtime cannot (Deno). */
  pause?(): void;
  resume?(): void;
}

/** What the listener reports about an upgraded caller connection. */
export interface WebSocketSession {
  open(socket: CallerWebSocket): void;
  message(data: string | Uint8Array): void;
  /** Bytes of a caller's frame arrived (listeners that read frames themselves): not idle, though no message is whole yet. */
  activity(): void;
  close(code: number, reason: string): void;
  /** The send buffer emptied after `send` returned false. */
  drain(): void;
}

/** The largest WebSocket message relayed either way (bytes). */
export const WEBSOCKET_MAX_MESSAGE = 16 * 1024 * 1024;

export type RequestHandler = (request: Request, conn: ConnInfo) => Response | Promise<Response>;

export interface TlsFiles {
  /** PEM text, not paths: the caller reads files through the runtime. */
  readonly cert: string;
  readonly key: string;
  /** PEM CA bundle that client certificates must chain to (enables mTLS). */
  readonly clientCa?: string;
  /** Refuse handshakes without a client certificate. */
  readonly requireClientCert?: boolean;
  /** Certificates served by SNI (`[[certificates]]`); `cert`/`key` for every other name. */
  readonly certificates?: readonly SniCertificate[];
}

export interface SniCertificate {
  /** Lower-case server names; `*.example.com` matches one label. */
  readonly snis: readonly string[];
  readonly cert: string;
  readonly key: string;
}

/**
 * Bounds on a listener's connections, nginx's names and meanings (docs/security.md says which
 * runtime listener honours which). Milliseconds; 0 turns a timeout off.
 */
export interface ListenerLimits {
  /** From connect (or the end of keep-alive idleness) until the request's headers are complete. */
  readonly clientHeaderTimeout: number;
  /** From TCP accept until the TLS handshake is done. */
  readonly tlsHandshakeTimeout: number;
  /** How long an idle keep-alive connection stays open; 0 closes it after each response. */
  readonly keepaliveTimeout: number;
  /** Connections open at once; more are closed on accept. */
  readonly maxConnections: number;
}

export const DEFAULT_LIMITS: ListenerLimits = {
  clientHeaderTimeout: 60_000,
  tlsHandshakeTimeout: 10_000,
  keepaliveTimeout: 75_000,
  maxConnections: 10_000,
};

export interface ListenOptions {
  readonly hostname: string;
  readonly port: number;
  readonly tls?: TlsFiles;
  readonly limits?: ListenerLimits;
  /** Linux SO_REUSEPORT, for several worker processes on one port. */
  readonly reusePort?: boolean;
  /**
   * The node:http listener even where the runtime has a faster one (Bun.serve): every limit,
   * pipelining and absolute-form targets as RFC 9112 has them (`[server] strict_listener`).
   */
  readonly strict?: boolean;
  readonly handler: RequestHandler;
  /**
   * The answer when `handler` throws, from the layer that can log it (the runtime has no
   * logger); the request when the listener still has it (Bun.serve's error callback has not).
   * Unset, or throwing itself: a bare JSON 500 (`handlerFailed`).
   */
  readonly onError?: (error: unknown, request: Request | undefined) => Response;
}

export interface Listener {
  readonly hostname: string;
  readonly port: number;
  /**
   * Stop accepting and close idle connections at once; resolve when in-flight requests are
   * done or `graceMs` has passed.
   */
  stop(graceMs: number): Promise<void>;
}

/** Options for an outbound HTTP client (to an IdP). */
export interface OutboundTls {
  /** Extra trusted CAs (PEM), on top of the system roots. */
  readonly ca?: readonly string[];
  /** Client certificate and key (PEM) for mutual TLS. */
  readonly cert?: string;
  readonly key?: string;
  /** `false` disables server certificate verification (never by default). */
  readonly verify?: boolean;
  /** Most CA certificates allowed between the upstream's certificate and the trust anchor (`tls_verify_depth`). */
  readonly verifyDepth?: number;
  /** A forward proxy (`http://[user:pass@]host:port`): CONNECT for https URLs, absolute-form for http. */
  readonly proxy?: string;
}

/**
 * TLS of an outbound raw connection (to an upstream). Verification is on unless `verify` is
 * false; `ca` adds to the system roots; `cert`/`key` present a client certificate (upstream mTLS).
 */
export interface SocketTls {
  /** SNI and the name the certificate must carry; the connect host when absent (no SNI for IP addresses). */
  readonly serverName?: string;
  /** Extra trusted CAs (PEM), on top of the system roots. */
  readonly ca?: readonly string[];
  readonly cert?: string;
  readonly key?: string;
  readonly verify?: boolean;
  /** Most CA certificates allowed between the peer's certificate and the trust anchor; set, the connection goes through node:tls. */
  readonly verifyDepth?: number;
}

export interface ConnectOptions {
  readonly hostname: string;
  readonly port: number;
  readonly tls?: SocketTls;
  /** TCP connect and TLS handshake together must finish within this (ms). */
  readonly timeoutMs: number;
}

/** What a raw connection reports; set by its current user (a connection moves between requests). */
export interface SocketEvents {
  /** Bytes arrived; the chunk is the receiver's to keep. */
  data(chunk: Uint8Array): void;
  /** Everything written so far was handed to the kernel (after a `write` returned false). */
  drain(): void;
  /** The connection ended (peer closed, reset or error); called once. */
  close(error?: Error): void;
}

/** A TCP or TLS connection, runtime-neutral. Writes are queued; `false` means "wait for drain". */
export interface RawSocket {
  events: SocketEvents;
  /** A string must be ASCII (one byte per character); other text goes as bytes. */
  write(data: Uint8Array | string): boolean;
  /** Stop and restart reading (backpressure towards the peer). */
  pause(): void;
  resume(): void;
  /** Closes the connection; no `close` event follows. */
  destroy(): void;
  readonly closed: boolean;
}

/** A copy of this program started by `Runtime.spawnSelf`. */
export interface ChildProcess {
  readonly pid: number;
  /** Resolves once it has exited: its exit code, or the signal that ended it. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: string | null }>;
  kill(signal: "SIGTERM" | "SIGINT" | "SIGHUP" | "SIGKILL"): void;
}

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface Runtime {
  readonly name: "bun" | "deno";
  /** Runtime version, for `--version` and logs. */
  readonly version: string;
  listen(options: ListenOptions): Promise<Listener>;
  /**
   * Fetch for proxying: never decompresses, never follows redirects, streams both ways,
   * reuses connections.
   */
  createUpstreamFetch(tls: OutboundTls): FetchLike;
  /** Opens a raw TCP or TLS connection (the upstream HTTP/1.1 client's transport). */
  connect(options: ConnectOptions, events: SocketEvents): Promise<RawSocket>;
  /** A fetch for outbound calls with its own trust store and optional client certificate. */
  createFetch(tls: OutboundTls): FetchLike;
  /** Opens a TCP connection and closes it (active `tcp` health checks); rejects with `timeout: true` after `timeoutMs`. */
  tcpConnect(host: string, port: number, timeoutMs: number): Promise<void>;
  readTextFile(path: string): Promise<string>;
  /** Write atomically (temp file + rename) with the given mode; missing parent folders are made (0700). */
  writeFileAtomic(path: string, data: string, mode: number): Promise<void>;
  fileMode(path: string): Promise<number | undefined>;
  /** Calls `onChange` when the file changes; returns a function that stops watching. */
  watchFile(path: string, onChange: () => void): () => void;
  onSignal(signal: "SIGINT" | "SIGTERM" | "SIGHUP", handler: () => void): void;
  exit(code: number): never;
  args(): string[];
  env(name: string): string | undefined;
  /** Resident set size in bytes. */
  memoryRss(): number;
  /**
   * Starts another copy of this program (the compiled binary, or the runtime with the same
   * entry module) with `args` and extra `env`; stdout and stderr are shared with this process.
   */
  spawnSelf(args: readonly string[], env: Readonly<Record<string, string>>): ChildProcess;
  pid(): number;
  /** The parent's pid: a worker notices its supervisor is gone when this changes. */
  parentPid(): number;
  /**
   * A synchronous HMAC-SHA-256 under `key`, base64url digests: cache keys on the hot path
   * (WebCrypto's async `sign` is costly per call on Bun). Absent: callers use WebCrypto.
   */
  hmacSha256?(key: Uint8Array): (data: string) => string;
  /**
   * The runtime's own TOML parser (Bun.TOML), cheaper than smol-toml on a large file. Throws on
   * any error (the caller then asks smol-toml for the line and column); turns datetimes into
   * strings, so the caller keeps smol-toml for text that may hold one. Absent: smol-toml.
   */
  parseToml?(text: string): unknown;
  /** A synchronous SHA-256 of a string's UTF-8 bytes (DPoP replay keys). Absent: callers use WebCrypto. */
  sha256?(data: string): Uint8Array;
  /**
   * A synchronous JWS signature check with a public JWK (DPoP proofs), or undefined when the key
   * and algorithm are not a plain case the caller then leaves to WebCrypto. Absent: WebCrypto.
   */
  jwsVerifier?(jwk: Readonly<Record<string, unknown>>, alg: string): ((data: Uint8Array, signature: Uint8Array) => boolean) | undefined;
}
