/**
 * The common shapes of a `[[routes]]` entry (name, service, paths, hosts, methods and the scalar
 * keys), checked by plain code: zod's generic walk of 11 000 routes was a large part of
 * loading such a file. Anything else, or anything invalid, returns undefined and goes through
 * the schema in routes.ts, so every message stays the schema's. The value is the schema's,
 * the route frozen here (test/unit/config/routes-fast.test.ts compares the two).
 */

import { ENTITY_NAME } from "./fields.ts";

/** Patterns shared with the schema (routes.ts), so both accept the same strings. */
export const HOST = /^(\*\.)?[a-zA-Z0-9.-]+(\.\*)?(:\d+)?$/;
export const PATH = /^(\/|~)/;
export const METHOD = /^[A-Z]+$/;
export const PROTOCOLS = ["http", "https", "ws", "wss"] as const;
export const REDIRECT_CODES = [426, 301, 302, 307, 308] as const;

// Most routes leave most lists empty: one frozen empty value each, not a fresh copy per route.
export const EMPTY_LIST: never[] = Object.freeze([]) as never[];
export const EMPTY_RECORD: Record<string, never> = Object.freeze({});
const DEFAULT_PROTOCOLS = Object.freeze(["http", "https"]) as ("http" | "https" | "ws" | "wss")[];

export const validRegex = (source: string, flags?: string) => {
  try {
    new RegExp(source, flags);
    return true;
  } catch {
    return false;
  }
};

const SCALARS = new Set([
  "name",
  "service",
  "paths",
  "hosts",
  "methods",
  "protocols",
  "https_redirect_status_code",
  "strip_path",
  "preserve_host",
  "path_handling",
  "regex_priority",
]);

/**
 * The list itself (each string matching `pattern`), the shared empty list, or undefined. Lists
 * are not frozen (load.ts says why); the route holding it is.
 */
function strings(value: unknown, pattern: RegExp): string[] | undefined {
  if (value === undefined) return EMPTY_LIST;
  if (!Array.isArray(value)) return undefined;
  if (value.length === 0) return EMPTY_LIST;
  for (const s of value) if (typeof s !== "string" || !pattern.test(s)) return undefined;
  return value as string[];
}

function protocols(value: unknown): (typeof PROTOCOLS)[number][] | undefined {
  if (value === undefined) return DEFAULT_PROTOCOLS;
  if (!Array.isArray(value) || value.length === 0) return undefined;
  for (const p of value) if (!PROTOCOLS.includes(p)) return undefined;
  return value as (typeof PROTOCOLS)[number][];
}

/**
 * What the routes of one file can share: the parser gives each route its own copy of its service's
 * name and of its method list (11 000 routes to one service: ~0.7 MB of equal strings kept alive).
 */
export type RouteShare = Map<string, string | string[]>;

function shared(share: RouteShare, s: string): string {
  const known = share.get(s);
  if (typeof known === "string") return known;
  share.set(s, s);
  return s;
}

/** Keyed by the names joined with spaces after a space (no name has one, so no key is a service's). */
function sharedList(share: RouteShare, list: string[]): string[] {
  const key = ` ${list.join(" ")}`;
  const known = share.get(key);
  if (Array.isArray(known)) return known;
  share.set(key, list);
  return list;
}

/**
 * The validated, frozen route, or undefined: then the schema decides (and words the error).
 * With `share`, equal service names and method lists are one value across the file's routes.
 */
export function fastRoute(raw: unknown, share?: RouteShare) {
  if (typeof raw !== "object" || raw === null) return undefined;
  // The TOML parser's tables have no prototype.
  const proto = Object.getPrototypeOf(raw);
  if (proto !== null && proto !== Object.prototype) return undefined;
  const r = raw as Record<string, unknown>;
  for (const key in r) if (!SCALARS.has(key)) return undefined;
  const { name, service } = r;
  if (typeof name !== "string" || !ENTITY_NAME.test(name) || typeof service !== "string" || !ENTITY_NAME.test(service)) return undefined;
  const paths = strings(r.paths, PATH);
  const hosts = strings(r.hosts, HOST);
  const methods = strings(r.methods, METHOD);
  const protocolList = protocols(r.protocols);
  if (!paths || !hosts || !methods || !protocolList) return undefined;
  if (!paths.length && !hosts.length && !methods.length) return undefined;
  for (const p of paths) if (p.charCodeAt(0) === 126 /* ~ */ && !validRegex(p.slice(1))) return undefined;
  const redirect = r.https_redirect_status_code ?? 426;
  const strip = r.strip_path ?? true;
  const preserve = r.preserve_host ?? false;
  const handling = r.path_handling ?? "v0";
  const priority = r.regex_priority ?? 0;
  if (!REDIRECT_CODES.includes(redirect as never) || typeof strip !== "boolean" || typeof preserve !== "boolean") return undefined;
  if ((handling !== "v0" && handling !== "v1") || !Number.isSafeInteger(priority)) return undefined;
  return Object.freeze({
    name,
    service: share ? shared(share, service) : service,
    paths,
    hosts,
    methods: share && methods.length ? sharedList(share, methods) : methods,
    headers: EMPTY_RECORD as Record<string, string[]>,
    snis: EMPTY_LIST as string[],
    sources: EMPTY_LIST as { ip?: string; port?: number }[],
    destinations: EMPTY_LIST as { ip?: string; port?: number }[],
    protocols: protocolList,
    https_redirect_status_code: redirect as (typeof REDIRECT_CODES)[number],
    strip_path: strip,
    preserve_host: preserve,
    path_handling: handling as "v0" | "v1",
    regex_priority: priority as number,
  });
}
