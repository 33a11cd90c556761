/**
 * One `[[upstreams]]` at run time: its balancer, its health checker, and the consistent-hashing
 * input read from a request. The proxy asks it for a target per attempt (`peers`).
 */
import type { UpstreamConfig } from "../../config/upstreams.ts";
import { NoHealthyPeerError } from "../../errors.ts";
import { cookieValues } from "../../lib/cookies.ts";
import { Balancer } from "./balancer.ts";
import { HealthChecker, type Outcome, type Prober } from "./health.ts";
import type { Target } from "./target.ts";

/** What consistent hashing may read from a request. */
export interface HashSource {
  readonly ip: string;
  readonly headers: Headers;
  /** The normalised request path. */
  readonly path: string;
  /** The raw query string without `?`. */
  readonly query: string;
  readonly consumer?: string;
  /** A capture group (name or number) of the matched route's regex path (`uri_capture`). */
  capture?(name: string): string | undefined;
}

/** The targets one request's attempts go to: a retry prefers another target. */
export interface TargetPicker {
  /** The target for the next attempt; throws NoHealthyPeerError when none is usable. */
  pick(): Target;
  /** How the attempt on the last picked target ended (undefined: the caller left, nothing to count). */
  done(outcome: Outcome | undefined, ms: number): void;
  /** `Set-Cookie` for the response: the request had no `hash_on_cookie`, so one was made up (Kong). */
  readonly setCookie?: string;
}

/** A value made up for a request without the hashing cookie, and the cookie that carries it. */
interface Generated {
  cookie?: string;
}

function queryValue(query: string, name: string): string | undefined {
  if (!query) return undefined;
  return new URLSearchParams(query).getAll(name).join(",") || undefined;
}

export class UpstreamPool {
  readonly config: UpstreamConfig;
  readonly balancer: Balancer;
  readonly health: HealthChecker;

  constructor(config: UpstreamConfig, prober?: Prober, onChange?: (target: Target, healthy: boolean) => void) {
    this.config = config;
    this.balancer = new Balancer(
      config.targets.map((t) => ({ host: t.target.host, port: t.target.port, weight: t.weight })),
      { algorithm: config.algorithm, slots: config.slots },
    );
    this.health = new HealthChecker(this.balancer.targets, config.healthchecks, prober, onChange);
  }

  /**
   * The consistent-hashing input of a request: `hash_on`, else `hash_fallback`, else none. With
   * `generated`, a missing hashing cookie is made up (a random id) and its `Set-Cookie` put there.
   */
  hashValue(source: HashSource, generated?: Generated): string | undefined {
    if (this.config.algorithm !== "consistent-hashing") return undefined;
    const c = this.config;
    return (
      this.#input(c.hash_on, source, c.hash_on_header, c.hash_on_query_arg, c.hash_on_uri_capture, generated) ??
      this.#input(c.hash_fallback, source, c.hash_fallback_header, c.hash_fallback_query_arg, c.hash_fallback_uri_capture, generated)
    );
  }

  #input(
    kind: UpstreamConfig["hash_on"],
    s: HashSource,
    header: string | undefined,
    arg: string | undefined,
    capture: string | undefined,
    generated: Generated | undefined,
  ): string | undefined {
    switch (kind) {
      case "none":
        return undefined;
      case "consumer":
        return s.consumer;
      case "ip":
        return s.ip || undefined;
      case "header":
        return s.headers.get(header!) ?? undefined;
      case "cookie": {
        const name = this.config.hash_on_cookie!;
        const value = cookieValues(s.headers.get("cookie"), name)[0];
        if (value !== undefined || !generated) return value;
        const made = crypto.randomUUID();
        generated.cookie = `${name}=${made}; Path=${this.config.hash_on_cookie_path}`;
        return made;
      }
      case "path":
        return s.path;
      case "query_arg":
        return queryValue(s.query, arg!);
      case "uri_capture":
        return s.capture?.(capture!) || undefined;
    }
  }

  peers(source: HashSource): TargetPicker {
    const generated: Generated = {};
    const hashValue = this.hashValue(source, generated);
    const tried = new Set<Target>();
    let last: Target | undefined;
    const { balancer, health } = this;
    const name = this.config.name;
    return {
      ...(generated.cookie ? { setCookie: generated.cookie } : {}),
      pick() {
        const target = balancer.pick(hashValue, tried);
        if (!target) throw new NoHealthyPeerError(`no usable target in upstream "${name}" (weight 0 or unhealthy)`);
        tried.add(target);
        target.active++;
        last = target;
        return target;
      },
      done(outcome, ms) {
        const target = last;
        if (!target) return;
        last = undefined;
        target.active--;
        if (!outcome) return;
        if (outcome.kind === "http") balancer.observe(target, ms);
        health.passive(target, outcome);
      },
    };
  }
}
