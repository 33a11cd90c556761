/**
 * One route's match conditions, compiled once: every attribute the route sets must match
 * (Kong: "the request must include all of the configured fields"), any one of its values will do.
 */
import { parseCidr, parseIp, type CidrRange } from "../../lib/ip.ts";
import type { RequestFacts } from "./facts.ts";

/** The route keys the router reads (the routes table of gateway.toml). */
export interface RouteRules {
  readonly paths: readonly string[];
  readonly hosts: readonly string[];
  readonly methods: readonly string[];
  readonly headers?: Readonly<Record<string, readonly string[]>>;
  readonly snis?: readonly string[];
  readonly sources?: readonly Endpoint[];
  readonly destinations?: readonly Endpoint[];
  readonly regex_priority: number;
  readonly strip_path: boolean;
}

interface Endpoint {
  readonly ip?: string;
  readonly port?: number;
}

export interface HostPattern {
  /** Lower-case name; for wildcards, the part without `*` (`.example.com`, `example.`). */
  readonly name: string;
  readonly kind: "exact" | "suffix" | "prefix";
  readonly port: number | undefined;
}

interface HeaderRule {
  readonly name: string;
  readonly exact: readonly string[];
  readonly patterns: readonly RegExp[];
}

interface EndpointRule {
  readonly cidr: CidrRange | undefined;
  readonly port: number | undefined;
}

function hostPattern(pattern: string): HostPattern {
  const lower = pattern.toLowerCase();
  const colon = lower.lastIndexOf(":");
  const name = colon > 0 && !lower.endsWith("]") ? lower.slice(0, colon) : lower;
  const port = name !== lower ? Number(lower.slice(colon + 1)) : undefined;
  if (name.startsWith("*")) return { name: name.slice(1), kind: "suffix", port };
  if (name.endsWith("*")) return { name: name.slice(0, -1), kind: "prefix", port };
  return { name, kind: "exact", port };
}

function hostMatches(h: HostPattern, name: string, port: number | undefined): boolean {
  if (h.port !== undefined && h.port !== port) return false;
  if (h.kind === "exact") return h.name === name;
  if (h.kind === "suffix") return name.length > h.name.length && name.endsWith(h.name);
  return name.length > h.name.length && name.startsWith(h.name);
}

/** Host header → lower-case name and port (the listener's port when the header has none). */
export function splitHost(host: string, localPort: number | undefined): [string, number | undefined] {
  const lower = host.toLowerCase();
  if (lower.startsWith("[")) {
    const end = lower.indexOf("]");
    const port = lower.slice(end + 2);
    return [lower.slice(0, end + 1), port ? Number(port) : localPort];
  }
  const colon = lower.lastIndexOf(":");
  return colon >= 0 ? [lower.slice(0, colon), Number(lower.slice(colon + 1))] : [lower, localPort];
}

const NONE: readonly never[] = Object.freeze([]);

export class Conditions {
  readonly methods: ReadonlySet<string> | undefined;
  readonly hosts: readonly HostPattern[];
  readonly headers: readonly HeaderRule[];
  readonly snis: readonly HostPattern[];
  readonly sources: readonly EndpointRule[];
  readonly destinations: readonly EndpointRule[];

  /**
   * The conditions of `rules`; routes that set none besides paths share one, and routes with the
   * same methods one set of them (`methodSets`, per router build: a Set costs ~1 µs to make).
   */
  static of(rules: RouteRules, methodSets?: Map<string, ReadonlySet<string>>): Conditions {
    const none =
      !rules.methods.length &&
      !rules.hosts.length &&
      !rules.snis?.length &&
      !rules.sources?.length &&
      !rules.destinations?.length &&
      isEmpty(rules.headers);
    return none ? ANYTHING : new Conditions(rules, methodSets);
  }

  constructor(rules: RouteRules, methodSets?: Map<string, ReadonlySet<string>>) {
    // Most routes set few attributes: absent ones share one empty list (memory at 10 000 routes).
    this.methods = rules.methods.length ? methodSet(rules.methods, methodSets) : undefined;
    this.hosts = rules.hosts.length ? rules.hosts.map(hostPattern) : NONE;
    const headers = isEmpty(rules.headers) ? NONE : Object.entries(rules.headers!);
    this.headers = headers.length
      ? headers.map(([name, values]) => ({
          name: name.toLowerCase(),
          exact: values.filter((v) => !v.startsWith("~*")).map((v) => v.toLowerCase()),
          patterns: values.filter((v) => v.startsWith("~*")).map((v) => new RegExp(v.slice(2), "i")),
        }))
      : NONE;
    // Kong ignores a trailing dot of an SNI name.
    this.snis = rules.snis?.length ? rules.snis.map((s) => hostPattern(s.length > 1 && s.endsWith(".") ? s.slice(0, -1) : s)) : NONE;
    const endpoint = (e: Endpoint): EndpointRule => ({ cidr: e.ip !== undefined ? parseCidr(e.ip) : undefined, port: e.port });
    this.sources = rules.sources?.length ? rules.sources.map(endpoint) : NONE;
    this.destinations = rules.destinations?.length ? rules.destinations.map(endpoint) : NONE;
  }

  /** Everything but the path, which the caller has matched. Loops, not closures: this runs per request. */
  test(req: RequestFacts, hostName: string, hostPort: number | undefined): boolean {
    if (this.methods !== undefined && !this.methods.has(req.method)) return false;
    if (this.hosts.length && !anyHost(this.hosts, hostName, hostPort)) return false;
    for (const h of this.headers) if (!headerMatches(h, req.headers?.get(h.name) ?? null)) return false;
    // As Kong (#6425): SNIs are only checked on TLS connections. Where the runtime does not
    // report the SNI, the Host header's name stands in (clients send the same name in both).
    if (this.snis.length && req.protocol === "https" && !anyHost(this.snis, req.sni?.toLowerCase() ?? hostName, undefined)) return false;
    if (this.sources.length && !endpointMatches(this.sources, req.remoteAddress, req.remotePort)) return false;
    if (this.destinations.length && !endpointMatches(this.destinations, req.localAddress, req.localPort)) return false;
    return true;
  }
}

function methodSet(methods: readonly string[], memo: Map<string, ReadonlySet<string>> | undefined): ReadonlySet<string> {
  if (!memo) return new Set(methods);
  const key = methods.join(" ");
  let set = memo.get(key);
  if (!set) memo.set(key, (set = new Set(methods)));
  return set;
}

function isEmpty(record: object | undefined): boolean {
  for (const _ in record) return false;
  return true;
}

const ANYTHING = new Conditions({ paths: NONE, hosts: NONE, methods: NONE, regex_priority: 0, strip_path: true });

function anyHost(patterns: readonly HostPattern[], name: string, port: number | undefined): boolean {
  for (const h of patterns) if (hostMatches(h, name, port)) return true;
  return false;
}

/**
 * Kong compares each header line; fetch joins repeated lines with ", ", so the joined value and
 * each comma-separated part are tried.
 */
function headerMatches(rule: HeaderRule, value: string | null): boolean {
  if (value === null) return false;
  if (valueMatches(rule, value)) return true;
  if (!value.includes(",")) return false;
  return value.split(",").some((part) => valueMatches(rule, part.trim()));
}

function valueMatches(rule: HeaderRule, value: string): boolean {
  const lower = value.toLowerCase();
  for (const e of rule.exact) if (e === lower) return true;
  for (const p of rule.patterns) if (p.test(value)) return true;
  return false;
}

function endpointMatches(rules: readonly EndpointRule[], address: string | undefined, port: number | undefined): boolean {
  let ip: bigint | undefined;
  let parsed = false;
  for (const r of rules) {
    if (r.port !== undefined && r.port !== port) continue;
    if (r.cidr === undefined) return true;
    if (!parsed) {
      ip = address !== undefined ? parseIp(address) : undefined;
      parsed = true;
    }
    if (ip !== undefined && (ip & r.cidr.mask) === r.cidr.base) return true;
  }
  return false;
}
