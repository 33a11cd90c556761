/**
 * What the upstream receives after a successful authentication: the access token in
 * `upstream_access_token_header`, and claims in `upstream_headers_names`. Claim header values
 * are computed once per token and plugin instance, never per request.
 */
import type { RequestContext } from "../../gateway/context.ts";
import type { UpstreamTokenHeader } from "./schema.ts";

/** A claim copied into a header. */
interface ClaimHeader {
  readonly claim: string;
  readonly header: string;
}

type HeaderPairs = readonly (readonly [name: string, value: string])[];

function claimHeaderMapping(claims: readonly string[], names: readonly string[]): ClaimHeader[] {
  return claims.map((claim, i) => ({ claim, header: names[i]!.toLowerCase() }));
}

/** A claim as a header value: strings as they are, lists comma-joined, objects as JSON. */
function headerValue(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  if (Array.isArray(value) && value.every((v) => typeof v === "string" || typeof v === "number" || typeof v === "boolean")) return value.join(",");
  return JSON.stringify(value);
}

/**
 * The claim `name` names: a top-level claim of that name, else, for a dotted name, the nested
 * claim it walks to (`realm_access.roles`, Kong's `["realm_access", "roles"]`).
 */
function claimAt(claims: Readonly<Record<string, unknown>>, name: string): unknown {
  if (name in claims || !name.includes(".")) return claims[name];
  let value: unknown = claims;
  for (const part of name.split(".")) {
    if (typeof value !== "object" || value === null || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** Header pairs for `claims` under `mapping`; values a header cannot carry are skipped. */
function claimHeaders(claims: Readonly<Record<string, unknown>> | undefined, mapping: readonly ClaimHeader[]): HeaderPairs {
  if (!claims || mapping.length === 0) return [];
  const out: [string, string][] = [];
  const probe = new Headers();
  for (const { claim, header } of mapping) {
    const value = headerValue(claimAt(claims, claim));
    if (value === undefined) continue;
    try {
      probe.set(header, value); // throws for CR, LF or NUL: such a claim is not forwarded
      out.push([header, value]);
    } catch {
      // a value the Headers class refuses is dropped
    }
  }
  return out;
}

/** What the upstream headers are made of: the access token and its claims (a token cache's value). */
export interface Grant {
  readonly token: string;
  /** Verified claims of the token (a JWT's, or an introspection response); absent for an opaque token. */
  readonly claims: Readonly<Record<string, unknown>> | undefined;
  /** The IdP's signed introspection answer (RFC 9701), when `introspection_accept` asked for one. */
  readonly jwt?: string;
}

export interface UpstreamHeaderSettings {
  readonly upstream_access_token_header: UpstreamTokenHeader;
  readonly upstream_headers_claims: readonly string[];
  readonly upstream_headers_names: readonly string[];
}

/**
 * The upstream headers of one plugin instance. They are rendered here, from the grant, and never
 * cached with the token: token caches are shared by instances with other header settings (the
 * fleet's Redis holds one entry per credentials for every route with the same salt). Claim headers
 * are rendered once per grant and instance and remembered with the claims object the token cache
 * holds (one WeakMap lookup per request, none when no claim is copied). The token header is
 * joined per request: a remembered `prefix + token` was a second copy of every cached token
 * (about 2 KiB of an entry with the pair arrays and the WeakMap's), and joining ~900 bytes costs
 * some 20 ns.
 */
/** Every upstream header name the settings make this plugin set. */
export function upstreamHeaderNames(settings: UpstreamHeaderSettings): string[] {
  return [...new Set([settings.upstream_access_token_header.name.toLowerCase(), ...settings.upstream_headers_names.map((n) => n.toLowerCase())])];
}

export function createUpstreamHeaders(settings: UpstreamHeaderSettings): (c: RequestContext, grant: Grant) => void {
  const { name: tokenName, prefix } = settings.upstream_access_token_header;
  const mapping = claimHeaderMapping(settings.upstream_headers_claims, settings.upstream_headers_names);
  // Every header the plugin owns is removed first: the core forwards the caller's headers, so a
  // caller's own `X-User-Email` would otherwise reach the upstream as if it came from a verified
  // token whenever the claim is missing or the token is opaque.
  const owned = [...new Set([tokenName, ...mapping.map((m) => m.header)])];
  // Keyed by the claims object: the token cache may hand out a new grant object for the same
  // cached entry (it keeps tokens packed, src/oidc/client/token-cache.ts), never new claims.
  const rendered = new WeakMap<object, HeaderPairs>();
  // The last token header joined: a busy caller's token is the same string on each request, and
  // `Headers.set` takes a joined (rope) ~1 KiB value ~250 ns slower than a flat one. One value, so
  // no cached token gains a second copy.
  let lastToken: string | undefined;
  let lastValue = "";
  return (c, grant) => {
    const headers = c.var.upstreamHeaders;
    for (const name of owned) headers.delete(name);
    if (grant.token !== lastToken) {
      lastToken = grant.token;
      lastValue = prefix + grant.token;
    }
    headers.set(tokenName, lastValue);
    if (mapping.length === 0) return;
    const key = grant.claims ?? grant;
    let pairs = rendered.get(key);
    if (!pairs) {
      pairs = claimHeaders(grant.claims, mapping);
      rendered.set(key, pairs);
    }
    for (const [name, value] of pairs) headers.set(name, value);
  };
}
