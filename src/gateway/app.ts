/**
 * Builds the proxy from a validated config: routes compiled once, plugin instances created
 * once, and per route a fixed chain (plugins in Kong's precedence and priority, then the proxy).
 */
import { base64url } from "jose";
import type { GatewayConfig, PluginEntry, ServiceConfig } from "../config/schema.ts";
import { BadRequestError, GatewayError, NoRouteError, UpstreamTimeoutError, UpstreamUnavailableError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { pluginRegistry } from "../plugins/registry.ts";
import { createConsumerDirectory } from "../plugins/consumers.ts";
import type { PluginContext, PluginInstance } from "../plugins/types.ts";
import type { ConnInfo, FetchLike } from "../runtime/types.ts";
import type { PluginHandler, RequestContext } from "./context.ts";
import { allowResponse } from "./decision.ts";
import { errorResponse } from "./error-response.ts";
import { createTrustedProxies } from "./trusted-proxies.ts";
import { headerPolicy, requestIdFrom, upstreamHeadLines, upstreamRequestHeaders, type ForwardedFacts, type HeaderPolicy } from "./headers.ts";
import { normalizePath, splitTarget } from "./path.ts";
import { proxy, proxyBalanced, proxyPooled } from "./proxy.ts";
import { proxyWebSocket } from "./websocket.ts";
import type { Connector } from "../upstream/websocket/client.ts";
import { hasPlugins, routeChain, type ActivePlugin, type Chain } from "./plugin-chain.ts";
import type { ConnectionPool, UpstreamTimeouts } from "../upstream/pool.ts";
import { GatewayContext } from "./request-context.ts";
import { checkProtocol, isWebSocketUpgrade } from "./router/protocols.ts";
import { uriCapture } from "./router/captures.ts";
import { upstreamPath, type CompiledRoute } from "./router/router.ts";
import { routingFor, type Routing } from "./router/routing.ts";
import type { TargetPicker, UpstreamPool } from "../upstream/balancer/upstream-pool.ts";

type Handler = PluginHandler;

export interface ProxyApp {
  fetch(request: Request, conn: ConnInfo): Response | Promise<Response>;
  /** Plugin instances by `pluginKey` of their entry, `<name>:<digest>` (disabled ones are absent). */
  readonly plugins: ReadonlyMap<string, PluginInstance>;
  /** Releases the plugin instances, except those a newer app took over. */
  close(keep?: ReadonlySet<PluginInstance>): Promise<void>;
  /** Its compiled routes, which the next config's app keeps when neither routes nor services changed. */
  readonly routing: Routing;
}

/**
 * Identity of a plugin entry: an unchanged entry keeps its instance (and caches) across reloads.
 * A digest, so the entry's secrets (client_secret, salts) never become a map key.
 */
async function pluginKey(entry: PluginEntry): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(entry)));
  return `${entry.name}:${base64url.encode(new Uint8Array(digest))}`;
}

export interface ProxyAppDeps {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly pluginContext: PluginContext;
  /** Instances of the previous config, reused for unchanged entries. */
  readonly reuse?: ReadonlyMap<string, PluginInstance>;
  /** The previous config's routing, kept if its routes and services are the same. */
  readonly routing?: Routing;
  /** A fetch per service (its own TLS verification). */
  upstreamFetch(service: ServiceConfig): FetchLike;
  /** The gateway's own HTTP/1.1 client, a keep-alive pool per service; absent: `upstreamFetch`. */
  upstreamPool?(service: ServiceConfig, endpoint?: { readonly hostname: string; readonly port: number }): ConnectionPool;
  /** Raw connections to a service's upstream (or one of its targets), for WebSocket relays. */
  upstreamConnect?(service: ServiceConfig, endpoint?: { readonly hostname: string; readonly port: number }): Connector;
  /** Answer with the upstream's headers instead of proxying: decision mode (src/gateway/decision.ts). */
  readonly decide?: boolean;
  /** The running `[[upstreams]]` by name (lower-case): a service whose host names one is balanced over its targets. */
  readonly upstreams?: ReadonlyMap<string, UpstreamPool>;
  /** `GET` paths answered before routing, without plugins (e.g. `[keys] publish_path`). */
  readonly publicRoutes?: readonly { readonly path: string; handler(request: Request): Response | Promise<Response> }[];
}

export { pluginsForRoute } from "./plugin-chain.ts";

export async function createProxyApp(config: GatewayConfig, deps: ProxyAppDeps): Promise<ProxyApp> {
  const { log } = deps;
  const routing = routingFor(config, deps.routing);
  const { routes, router } = routing;

  const instances = new Map<string, PluginInstance>();
  const active: ActivePlugin[] = [];
  for (const entry of config.plugins) {
    if (!entry.enabled) continue;
    const definition = pluginRegistry.get(entry.name)!;
    const key = await pluginKey(entry);
    const instance =
      instances.get(key) ??
      deps.reuse?.get(key) ??
      (await definition.create(entry.config as Record<string, unknown>, {
        ...deps.pluginContext,
        log: log.child({ plugin: entry.name }),
        scope: { route: entry.route, service: entry.service, consumer: entry.consumer },
      }));
    instances.set(key, instance);
    active.push({ entry, priority: definition.priority, instance });
  }

  const fetchers = new Map(config.services.map((s) => [s.name, deps.upstreamFetch(s)]));
  const balanced = new Map<string, UpstreamPool>();
  for (const s of config.services) {
    const pool = deps.upstreams?.get(s.url.hostname.toLowerCase());
    if (pool) balanced.set(s.name, pool);
  }
  const pools = new Map<string, { pool: ConnectionPool; timeouts: UpstreamTimeouts }>();
  // A balanced service has a keep-alive pool per target.
  const targetPools = new Map<string, Map<string, ConnectionPool>>();
  if (deps.upstreamPool) {
    for (const s of config.services) {
      const timeouts = { connect: s.connect_timeout, write: s.write_timeout, read: s.read_timeout };
      const upstream = balanced.get(s.name);
      if (upstream)
        targetPools.set(s.name, new Map(upstream.balancer.targets.map((t) => [t.name, deps.upstreamPool!(s, { hostname: t.host, port: t.port })])));
      else pools.set(s.name, { pool: deps.upstreamPool(s), timeouts });
    }
  }
  /** What consistent hashing reads from this request. */
  const hashSource = (c: RequestContext, search: string) => ({
    ip: c.env.remoteAddress,
    headers: c.req.raw.headers,
    path: c.req.path,
    query: search.slice(1),
    ...(c.var.consumer ? { consumer: c.var.consumer.id } : {}),
    // The route's regex matched the normalised path; its captures are taken from the same.
    capture: (name: string) => uriCapture(c.var.route.config.paths, normalizePath(c.req.path, escapedSlashes) ?? c.req.path, name),
  });
  /** Kong's cookie for `hash_on = "cookie"` when the request had none: the next request hashes the same. */
  const withHashCookie = (response: Response, picker: TargetPicker | undefined): Response => {
    if (!picker?.setCookie) return response;
    try {
      response.headers.append("set-cookie", picker.setCookie);
      return response;
    } catch {
      // A fetch response's headers are immutable.
      const copy = new Response(response.body, response);
      copy.headers.append("set-cookie", picker.setCookie);
      return copy;
    }
  };
  const upstreamLatency = new Map(config.services.map((s) => [s.name, deps.metrics.upstreamSeries(s.name)]));
  // Per route, made on its first request: its metrics series (later requests only increment them)
  // and its access-log members. At start they would cost every route of a 10 000-route file.
  const perRoute: ({ metrics: ReturnType<Metrics["route"]>; log: string } | undefined)[] = [];
  const routeStats = (r: CompiledRoute) =>
    (perRoute[r.index] = {
      metrics: deps.metrics.route(r.config.name, r.service.name),
      log: `"route":${JSON.stringify(r.config.name)},"service":${JSON.stringify(r.service.name)}`,
    });
  const noRoute = { metrics: deps.metrics.route("", ""), log: `"route":null,"service":null` };
  const pooledHandler: Handler = async (c) => {
    const route = c.var.route;
    const service = route.service;
    const raw = c.req.raw;
    const path = upstreamPath(service.url.pathname, c.var.strippedPath, route.config.path_handling);
    const search = (c as GatewayContext).search;
    const target = path + (c.var.upstreamSearch ?? search);
    const request = {
      method: raw.method,
      target,
      host: route.config.preserve_host ? (raw.headers.get("host") ?? service.url.host) : service.url.host,
      headers: (c as GatewayContext).headLines ?? c.var.upstreamHeaders,
      body: c.var.upstreamBody !== undefined ? c.var.upstreamBody : raw.body,
      caller: raw,
      requestId: c.var.requestId,
    };
    const upstream = balanced.get(service.name);
    let result;
    let picker: TargetPicker | undefined;
    if (upstream) {
      const byTarget = targetPools.get(service.name)!;
      const hostHeader = route.config.preserve_host ? request.host : upstream.config.host_header;
      picker = upstream.peers(hashSource(c, search));
      result = await proxyBalanced(
        service,
        { connect: service.connect_timeout, write: service.write_timeout, read: service.read_timeout },
        {
          ...request,
          picker,
          poolFor: (t) => byTarget.get(t.name)!,
          ...(hostHeader !== undefined ? { hostHeader } : {}),
        },
      );
    } else {
      const { pool, timeouts } = pools.get(service.name)!;
      result = await proxyPooled(pool, service, timeouts, request);
    }
    const response = withHashCookie(result.response, picker);
    (c as GatewayContext).proxied = response;
    c.set("upstreamLatency", result.upstreamLatency);
    upstreamLatency.get(service.name)!.observe(result.upstreamLatency / 1000);
    c.res = response;
  };
  const fetchHandler: Handler = async (c) => {
    const route = c.var.route;
    const service = route.service;
    const raw = c.req.raw;
    const target = splitTarget(raw.url);
    const path = upstreamPath(service.url.pathname, c.var.strippedPath, route.config.path_handling);
    // A string: fetch parses it once; a URL object would be parsed here and again from its href.
    const url = service.url.origin + path + (c.var.upstreamSearch ?? target.search);
    const headers = c.var.upstreamHeaders;
    if (route.config.preserve_host) headers.set("host", raw.headers.get("host") ?? service.url.host);
    const upstream = balanced.get(service.name);
    // Kong sends the target's host:port as Host, or the upstream's host_header when it has one.
    if (upstream?.config.host_header && !route.config.preserve_host) headers.set("host", upstream.config.host_header);
    const picker = upstream?.peers(hashSource(c, target.search));
    const result = await proxy(fetchers.get(service.name)!, service, {
      method: raw.method,
      url,
      headers,
      body: c.var.upstreamBody !== undefined ? c.var.upstreamBody : raw.body,
      caller: raw,
      ...(picker
        ? {
            targets: {
              picker,
              scheme: service.url.protocol,
              pathAndQuery: path + (c.var.upstreamSearch ?? target.search),
            },
          }
        : {}),
    });
    c.set("upstreamLatency", result.upstreamLatency);
    deps.metrics.upstream(service.name, result.upstreamLatency / 1000);
    c.res = withHashCookie(result.response, picker);
  };
  const decideHandler: Handler = async (c) => {
    c.res = allowResponse(c.req.raw.headers, c.var.upstreamHeaders);
  };
  const websocketHandler = async (c: RequestContext) => {
    const route = c.var.route;
    const service = route.service;
    const raw = c.req.raw;
    const path = upstreamPath(service.url.pathname, c.var.strippedPath, route.config.path_handling);
    const search = splitTarget(raw.url).search;
    const upstream = balanced.get(service.name);
    const host = route.config.preserve_host ? (raw.headers.get("host") ?? service.url.host) : upstream?.config.host_header;
    c.res = await proxyWebSocket(
      service,
      {
        target: path + (c.var.upstreamSearch ?? search),
        ...(host !== undefined ? { host } : {}),
        headers: c.var.upstreamHeaders,
        conn: c.env,
        ...(upstream ? { picker: upstream.peers(hashSource(c, search)) } : {}),
        connector: (endpoint) => deps.upstreamConnect!(service, endpoint),
      },
      log,
    );
    c.var.logFields.websocket = true;
  };
  const httpHandler = deps.decide ? decideHandler : deps.upstreamPool ? pooledHandler : fetchHandler;
  // An `Upgrade: websocket` the listener can take over is relayed as a WebSocket, after the plugins.
  const proxyHandler: Handler = (c, next) => (c.env.upgrade && deps.upstreamConnect && !deps.decide ? websocketHandler(c) : httpHandler(c, next));

  const consumers = await createConsumerDirectory(config.consumers);
  const trusted = createTrustedProxies(config.server, log);
  // A client certificate header is the trusted load balancer's to set, never a caller's.
  const clientCertHeader = config.server.client_cert_header ? [config.server.client_cert_header.toLowerCase()] : [];
  // Per route, its chain and the caller headers it never forwards: those its plugins may set
  // (docs/security.md). Both depend on the route only through its name and its service's, so
  // routes that no plugin entry names share their service's (10 000 routes, a handful of chains).
  // A route no plugin applies to, on the gateway's own client, is `direct`: its upstream headers
  // are written straight into the request head (nothing edits them in between).
  // Keyed by the service object: no key string made and hashed per route.
  const named = new Set(active.map((p) => p.entry.route));
  const shared = new Map<ServiceConfig, { chain: Chain; policy: HeaderPolicy; direct: boolean }>();
  const chains: Chain[] = [];
  const policies: HeaderPolicy[] = [];
  const direct: boolean[] = [];
  for (const route of routes) {
    const own = named.has(route.config.name);
    let built = own ? undefined : shared.get(route.service);
    if (!built) {
      const applies = active.filter(
        (p) =>
          (p.entry.route === undefined || p.entry.route === route.config.name) &&
          (p.entry.service === undefined || p.entry.service === route.service.name),
      );
      built = {
        chain: routeChain(route, active, consumers, proxyHandler),
        policy: headerPolicy(config.server.underscores_in_headers, [
          ...applies.flatMap((p) => p.instance.upstreamHeaderNames ?? []),
          ...clientCertHeader,
        ]),
        direct: deps.upstreamPool !== undefined && !deps.decide && !hasPlugins(route, active),
      };
      if (!own) shared.set(route.service, built);
    }
    chains[route.index] = built.chain;
    policies[route.index] = built.policy;
    direct[route.index] = built.direct;
  }

  const accessLog = config.server.access_log;
  const escapedSlashes = config.server.escaped_slashes;
  // No Hono app around the proxy: routing is ours, and Hono's dispatch (its router, a second
  // compose, HEAD rewriting) costs more per request than the rest of the gateway's own work.
  const publicRoutes = new Map((deps.publicRoutes ?? []).map((r) => [r.path, r.handler]));
  const handle = async (raw: Request, peer: ConnInfo): Promise<Response> => {
    const trustedView = trusted?.resolve(peer, raw.headers);
    const conn = trustedView?.conn ?? peer;
    const target = splitTarget(raw.url);
    const normalized = normalizePath(target.path, escapedSlashes);
    const path = normalized ?? target.path;
    if (publicRoutes.size && (raw.method === "GET" || raw.method === "HEAD")) {
      const serve = publicRoutes.get(path);
      if (serve) return raw.method === "HEAD" ? new Response(null, await serve(raw)) : serve(raw);
    }
    const started = performance.now();
    const requestId = requestIdFrom(raw.headers);
    const c = new GatewayContext(raw, conn, target.path, target.search, requestId, consumers);
    const host = raw.headers.get("host") ?? "";
    const protocol = conn.tls ? "https" : "http";
    const match = router.match({
      method: raw.method,
      host,
      path,
      protocol,
      headers: raw.headers,
      sni: conn.serverName,
      remoteAddress: conn.remoteAddress,
      remotePort: conn.remotePort,
      localAddress: conn.localAddress,
      localPort: conn.localPort,
    });
    // What the mTLS listener saw, for operators and the e2e suite: subject and verdict, never the certificate.
    if (conn.peerCertificate && log.enabled("debug")) {
      log.debug("tls.client_certificate", { request_id: requestId, subject: conn.peerCertificate.subject, verified: conn.peerCertificate.verified });
    }
    let response: Response;
    try {
      if (normalized === undefined) throw new BadRequestError("the path has an escaped slash or a dot segment with parameters");
      if (!match) throw new NoRouteError();
      // As Kong: a trusted load balancer's X-Forwarded-Proto/-Host say how the client came in.
      const forwarded = trustedView?.forwarded;
      const redirect = checkProtocol(match.route.config, {
        tls: conn.tls || forwarded?.proto === "https",
        websocket: isWebSocketUpgrade(raw.headers),
        host: forwarded?.host ?? host,
        requestUri: target.path + target.search,
      });
      if (redirect) response = redirect;
      else {
        c.set("route", match.route);
        c.set("strippedPath", match.strippedPath);
        const facts: ForwardedFacts = {
          remoteAddress: conn.remoteAddress,
          protocol,
          host,
          port: conn.localPort,
          path,
          requestId,
          forwarded: trustedView?.forwarded,
        };
        // A WebSocket relay takes Headers.
        const policy = policies[match.route.index];
        if (direct[match.route.index] && !conn.upgrade) c.headLines = upstreamHeadLines(raw.headers, facts, policy);
        else c.set("upstreamHeaders", upstreamRequestHeaders(raw.headers, facts, policy));
        await chains[match.route.index]!(c);
        if (!c.res) throw new Error("the plugin chain ended without a response");
        response = c.res;
      }
    } catch (error) {
      if (!(error instanceof GatewayError) || error.ours) {
        log.error(error instanceof GatewayError ? error.code : "request.failed", {
          request_id: requestId,
          error,
          detail: error instanceof GatewayError ? error.detail : undefined,
        });
      }
      if (match && (error instanceof UpstreamUnavailableError || error instanceof UpstreamTimeoutError)) {
        deps.metrics.upstreamError(match.route.service.name, error instanceof UpstreamTimeoutError ? "timeout" : "unavailable");
      }
      response = errorResponse(error, { displayErrors: c.var.displayErrors, unauthorizedMessage: c.var.unauthorizedMessage, requestId });
    }
    const elapsed = performance.now() - started;
    const routed = match ? (perRoute[match.route.index] ?? routeStats(match.route)) : noRoute;
    routed.metrics.request(response.status, elapsed / 1000);
    if (response !== c.proxied) {
      try {
        response.headers.set("x-request-id", requestId);
      } catch {
        // A plugin returned a response with immutable headers; it keeps its own.
      }
    }
    if (accessLog) {
      // Written as JSON members directly: an object and a stringify per request cost more.
      const upstreamMs = c.var.upstreamLatency >= 0 ? Math.round(c.var.upstreamLatency * 100) / 100 : null;
      let members = `"request_id":${JSON.stringify(requestId)},"method":${JSON.stringify(raw.method)},"path":${JSON.stringify(path)},${routed.log},"status":${response.status},"latency_ms":${Math.round(elapsed * 100) / 100},"upstream_latency_ms":${upstreamMs},"remote":${JSON.stringify(conn.remoteAddress)}`;
      const extra = c.var.logFields;
      for (const key in extra) members += `,${JSON.stringify(key)}:${JSON.stringify(extra[key])}`;
      log.infoJson("http.request", members);
    }
    return response;
  };

  return {
    fetch: handle,
    plugins: instances,
    routing,
    async close(keep) {
      for (const { pool } of pools.values()) pool.close();
      for (const byTarget of targetPools.values()) for (const pool of byTarget.values()) pool.close();
      for (const instance of instances.values()) if (!keep?.has(instance)) await instance.close?.();
    },
  };
}
