/** What one request carries through the plugin chain to the proxy. */
import type { Consumer, ConsumerDirectory } from "../plugins/consumers.ts";
import type { ConnInfo } from "../runtime/types.ts";
import type { CompiledRoute } from "./router/router.ts";

export interface GatewayVariables {
  requestId: string;
  route: CompiledRoute;
  /** The request path after `strip_path`, to be joined to the service path. */
  strippedPath: string;
  /** The headers the upstream will receive, already cleaned; plugins edit them. */
  upstreamHeaders: Headers;
  /** Extra fields for the access log line (e.g. `token_cache: "hit"`). Never secrets. */
  logFields: Record<string, string | number | boolean>;
  /** Upstream latency in ms, set by the proxy. */
  upstreamLatency: number;
  /** Shows error detail to callers (`display_errors`), set by an auth plugin. */
  displayErrors: boolean;
  /** Replaces the 401 body's message (`unauthorized_error_message`), set by an auth plugin. */
  unauthorizedMessage?: string;
  /** The query string (with `?`, or "") the upstream receives, when a plugin removed parameters (`hide_credentials`). */
  upstreamSearch?: string;
  /** The config's `[[consumers]]`, for authentication plugins to map callers to. */
  consumers: ConsumerDirectory;
  /** The consumer the caller was mapped to (or the `anonymous` one), set by an authentication plugin. */
  consumer?: Consumer;
  /** True when `consumer` is the `anonymous` consumer of a failed authentication. */
  anonymous?: boolean;
  /** The authenticated credential's identifier (openid-connect `credential_claim`, e.g. `sub`). */
  credential?: string;
  /** The caller's groups from its token (`authenticated_groups_claim`), read by the `acl` plugin. */
  authenticatedGroups?: readonly string[];
  /** The body the upstream receives, when a plugin had to read the caller's (credentials in a form body). */
  upstreamBody?: ReadableStream<Uint8Array> | null;
}

/**
 * What a plugin sees of one request: the part of Hono's `Context` the plugins use (`c.req.raw`,
 * `c.env`, `c.var`, `c.set`, `c.res`) and nothing more, so the gateway's own small context can
 * stand in for Hono's on the proxy path (and a Hono context still fits, e.g. in unit tests).
 */
export interface RequestContext {
  /** The caller's request, and its path as sent (before normalisation, without the query). */
  readonly req: { readonly raw: Request; readonly path: string };
  /** The connection the request arrived on. */
  readonly env: ConnInfo;
  readonly var: Readonly<GatewayVariables>;
  set<K extends keyof GatewayVariables>(key: K, value: GatewayVariables[K]): void;
  /** The response so far: set by the proxy step, or by a plugin that answers itself. */
  res: Response;
}

type Next = () => Promise<void>;

/** A plugin's per-request step (Hono middleware's shape): answer, or call `next` once and look at `c.res` after. */
// biome-ignore lint/suspicious/noConfusingVoidType: Hono middleware's shape: a handler that calls next() returns nothing.
export type PluginHandler = (c: RequestContext, next: Next) => Promise<Response | void>;

/** Hono's environment with the gateway's variables (for Hono apps that run plugin code, e.g. in tests). */
export interface GatewayEnv {
  Bindings: ConnInfo;
  Variables: GatewayVariables;
}
