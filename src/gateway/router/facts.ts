/** What the router may look at in a request (Kong's router fields), gathered once by the pipeline. */
export interface RequestFacts {
  readonly method: string;
  /** The Host header as sent (may carry a port). */
  readonly host: string;
  /** The normalized request path. */
  readonly path: string;
  /** Listener protocol; routes' `protocols` do not filter matching (Kong answers 426 after it). */
  readonly protocol: "http" | "https";
  /** Request headers, for routes with `headers`. */
  readonly headers?: { get(name: string): string | null };
  /** TLS server name the client sent, for routes with `snis`. */
  readonly sni?: string;
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  readonly localAddress?: string;
  /** The listener's port: a `hosts` entry with a port matches it when the Host header has none. */
  readonly localPort?: number;
}
