/**
 * Kong's `http_proxy` / `https_proxy` / `no_proxy` for calls to the IdP: which forward proxy, if
 * any, a URL goes through. `https://` IdPs are reached with CONNECT through `https_proxy`,
 * `http://` ones through `http_proxy`; a host listed in `no_proxy` goes direct.
 */

export interface ForwardProxy {
  /** Proxy URL for `http://` IdP URLs (`http://[user:pass@]host:port`). */
  readonly http?: string | undefined;
  /** Proxy URL for `https://` IdP URLs (CONNECT). */
  readonly https?: string | undefined;
  /** Hosts that go direct: exact names, `.example.com` / `*.example.com` suffixes, `*` for all. */
  readonly noProxy?: readonly string[] | undefined;
}

function hostOf(url: string): string {
  try {
    return new URL(url).hostname.toLowerCase().replace(/^\[|\]$/g, "");
  } catch {
    return "";
  }
}

function bypassed(host: string, noProxy: readonly string[]): boolean {
  for (const raw of noProxy) {
    const entry = raw.trim().toLowerCase().replace(/:\d+$/, "");
    if (!entry) continue;
    if (entry === "*" || entry === host) return true;
    const suffix = entry.startsWith("*.") ? entry.slice(1) : entry.startsWith(".") ? entry : `.${entry}`;
    if (host.endsWith(suffix)) return true;
  }
  return false;
}

/** The proxy URL for `url`, or undefined for a direct connection. */
export function proxyFor(url: string, proxy: ForwardProxy | undefined): string | undefined {
  if (!proxy) return undefined;
  const chosen = url.startsWith("https:") ? proxy.https : url.startsWith("http:") ? proxy.http : undefined;
  if (!chosen) return undefined;
  return bypassed(hostOf(url), proxy.noProxy ?? []) ? undefined : chosen;
}

/** Kong's three keys, as a plugin (or `[server]`, for defaults) writes them. */
export interface ForwardProxyKeys {
  readonly http_proxy?: string | undefined;
  readonly https_proxy?: string | undefined;
  readonly no_proxy?: string | undefined;
}

/** A plugin's forward proxies: its own keys, else `[server]`'s; undefined when neither sets one. */
export function forwardProxy(plugin: ForwardProxyKeys, server: ForwardProxyKeys): ForwardProxy | undefined {
  const own = plugin.http_proxy !== undefined || plugin.https_proxy !== undefined;
  const from = own ? plugin : server;
  if (from.http_proxy === undefined && from.https_proxy === undefined) return undefined;
  return { http: from.http_proxy, https: from.https_proxy, noProxy: parseNoProxy(own ? plugin.no_proxy : (plugin.no_proxy ?? server.no_proxy)) };
}

/** `no_proxy` as Kong writes it: one comma-separated string. */
function parseNoProxy(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((h) => h.trim())
    .filter(Boolean);
}

/** A key part that tells proxies apart without holding their credentials. */
export function proxyKey(proxy: ForwardProxy | undefined): string {
  const strip = (u: string | undefined) => (u ? u.replace(/\/\/[^@/]*@/, "//***@") : "");
  return proxy ? `${strip(proxy.http)}|${strip(proxy.https)}|${(proxy.noProxy ?? []).join(",")}` : "";
}
