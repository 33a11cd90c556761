/**
 * The gateway's own per-request context: what plugins see (`RequestContext`) in one small object.
 * Hono's `Context` built a request wrapper, a variables Map and per-instance closures for every
 * request, and rebuilt an object on each `c.var` read; here the variables are fields set once.
 */
import type { ConsumerDirectory } from "../plugins/consumers.ts";
import type { ConnInfo } from "../runtime/types.ts";
import type { HeadLines } from "../upstream/request-head.ts";
import type { GatewayVariables, RequestContext } from "./context.ts";

export class GatewayContext implements RequestContext {
  /** The caller's request (`c.req.raw`). */
  readonly raw: Request;
  readonly env: ConnInfo;
  readonly var: GatewayVariables;
  /** Undefined until the proxy step or a plugin answers. */
  res!: Response;
  /** The proxy step's response, which already carries `X-Request-Id`. */
  proxied: Response | undefined = undefined;
  /** On a route without plugins: the upstream headers as head lines, in place of `var.upstreamHeaders`. */
  headLines: HeadLines | undefined = undefined;
  /** The request path as sent (before normalisation) and its query with the `?` (or ""), parsed once. */
  readonly path: string;
  readonly search: string;

  constructor(raw: Request, conn: ConnInfo, path: string, search: string, requestId: string, consumers: ConsumerDirectory) {
    this.raw = raw;
    this.env = conn;
    this.path = path;
    this.search = search;
    // Every variable present from the start: one object shape for all requests.
    this.var = {
      requestId,
      route: undefined!,
      strippedPath: "",
      upstreamHeaders: undefined!,
      logFields: {},
      upstreamLatency: -1,
      displayErrors: false,
      unauthorizedMessage: undefined,
      upstreamSearch: undefined,
      consumers,
      consumer: undefined,
      anonymous: undefined,
      credential: undefined,
      authenticatedGroups: undefined,
      upstreamBody: undefined,
    };
  }

  /** `c.req.raw` and `c.req.path` without a wrapper object per request. */
  get req(): { readonly raw: Request; readonly path: string } {
    return this;
  }

  set<K extends keyof GatewayVariables>(key: K, value: GatewayVariables[K]): void {
    this.var[key] = value;
  }
}
