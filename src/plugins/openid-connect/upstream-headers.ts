/**
 * What the upstream receives after a successful authentication: the access token in
 * `upstream_access_token_header`, and claims in `upstream_headers_names`. Header values are
 * computed once per token (when it is fetched or verified), never per request.
 */
import type { Context } from "hono";
import type { GatewayEnv } from "../../gateway/context.ts";
import type { UpstreamTokenHeader } from "./schema.ts";

/** A claim copied into a header. */
export interface ClaimHeader {
  readonly claim: string;
  readonly header: string;
}

export type HeaderPairs = readonly (readonly [name: string, value: string])[];

export function claimHeaderMapping(claims: readonly string[], names: readonly string[]): ClaimHeader[] {
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

/** Header pairs for `claims` under `mapping`; values a header cannot carry are skipped. */
export function claimHeaders(claims: Readonly<Record<string, unknown>> | undefined, mapping: readonly ClaimHeader[]): HeaderPairs {
  if (!claims || mapping.length === 0) return [];
  const out: [string, string][] = [];
  const probe = new Headers();
  for (const { claim, header } of mapping) {
    const value = headerValue(claims[claim]);
    if (value === undefined) continue;
    try {
      probe.set(header, value); // throws for CR, LF or NUL: such a claim is not forwarded
      out.push([header, value]);
    } catch {
      continue;
    }
  }
  return out;
}

/**
 * Every header name the plugin writes upstream (the token header and all `upstream_headers_names`),
 * lower case, once each. Computed once at start.
 */
export function ownedHeaderNames(tokenHeader: UpstreamTokenHeader, names: readonly string[]): readonly string[] {
  return [...new Set([tokenHeader.name, ...names.map((n) => n.toLowerCase())])];
}

/**
 * Sets the access token and claim headers on the upstream request. Every header the plugin owns
 * is removed first: the core forwards the caller's headers, so a caller's own `X-User-Email`
 * would otherwise reach the upstream as if it came from a verified token whenever the claim is
 * missing or the token is opaque.
 */
export function applyUpstreamHeaders(c: Context<GatewayEnv>, owned: readonly string[], tokenHeader: UpstreamTokenHeader, tokenValue: string, claimPairs: HeaderPairs): void {
  const headers = c.var.upstreamHeaders;
  for (const name of owned) headers.delete(name);
  headers.set(tokenHeader.name, tokenValue);
  for (const [name, value] of claimPairs) headers.set(name, value);
}

/** The header value for `token`: `Bearer <token>` for `authorization:bearer`. Computed once per token. */
export function tokenHeaderValue(tokenHeader: UpstreamTokenHeader, token: string): string {
  return tokenHeader.prefix + token;
}
