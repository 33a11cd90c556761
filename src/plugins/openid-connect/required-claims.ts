/**
 * Kong's `audience_required` / `scopes_required`: each entry of the list is an alternative
 * (OR), and the space-separated values inside one entry are all required (AND). So
 * `["read write", "admin"]` lets in a token with both `read` and `write`, or with `admin`.
 * The values are read from the claim at `audience_claim` / `scopes_claim`, a path into the
 * claims (`["realm_access", "roles"]` is `claims.realm_access.roles`).
 *
 * As in Kong, they apply whatever method authenticated the caller: the claims of a verified JWT,
 * of an introspection response, or of the token the gateway got for the caller's credentials. A
 * caller with no claims to look at (an opaque token nobody introspected) fails a configured check.
 */
import { AuthError, type Challenge } from "../../errors.ts";

/** One requirement, parsed once at start: alternatives of value sets. */
export type Requirement = readonly (readonly string[])[];

/** `["read write", "admin"]` → `[["read", "write"], ["admin"]]`; empty entries are dropped. */
export function parseRequirement(entries: readonly string[]): Requirement {
  return entries.map((e) => e.split(/\s+/).filter(Boolean)).filter((set) => set.length > 0);
}

/** The claim at `path` (`["a", "b"]` is `claims.a.b`), or undefined. */
export function claimAt(claims: Readonly<Record<string, unknown>>, path: readonly string[]): unknown {
  let value: unknown = claims;
  for (const name of path) {
    if (!value || typeof value !== "object" || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[name];
  }
  return value;
}

/**
 * The values a claim holds: the strings of an array, or a string. `splitSpaces` reads a string
 * as a space-separated list (the `scope` claim, RFC 8693 §4.2 / RFC 9068 §2.2.3).
 */
export function claimValues(value: unknown, splitSpaces: boolean): ReadonlySet<string> {
  if (typeof value === "string") return new Set(splitSpaces ? value.split(" ").filter(Boolean) : [value]);
  if (Array.isArray(value)) return new Set(value.filter((v): v is string => typeof v === "string"));
  return new Set();
}

/** True when `values` satisfies one alternative of `requirement` (an empty requirement always). */
export function satisfies(values: ReadonlySet<string>, requirement: Requirement): boolean {
  if (requirement.length === 0) return true;
  return requirement.some((set) => set.every((v) => values.has(v)));
}

export interface RequirementsConfig {
  readonly audience_required: readonly string[];
  readonly audience_claim: readonly string[];
  readonly scopes_required: readonly string[];
  readonly scopes_claim: readonly string[];
}

type Verdict = "ok" | "audience" | "scope";

/**
 * The check of `audience_required` and `scopes_required`, built once per plugin instance, or
 * `undefined` when neither is configured. It returns the refusal of `claims` (an `AuthError`
 * with `challenges`) or `undefined`. A verdict is remembered per claims object (the one the
 * token cache holds), so a cached token costs one WeakMap lookup, not a claim walk.
 */
export function createRequirementCheck(config: RequirementsConfig): ((claims: Readonly<Record<string, unknown>> | undefined, challenges: readonly Challenge[]) => AuthError | undefined) | undefined {
  const audience = parseRequirement(config.audience_required);
  const scopes = parseRequirement(config.scopes_required);
  if (audience.length === 0 && scopes.length === 0) return undefined;
  const scope = scopes[0]?.join(" ");
  const verdicts = new WeakMap<object, Verdict>();
  const judge = (claims: Readonly<Record<string, unknown>> | undefined): Verdict => {
    if (!claims) return audience.length ? "audience" : "scope";
    let verdict = verdicts.get(claims);
    if (verdict === undefined) {
      verdict = !satisfies(claimValues(claimAt(claims, config.audience_claim), false), audience)
        ? "audience"
        : !satisfies(claimValues(claimAt(claims, config.scopes_claim), true), scopes)
          ? "scope"
          : "ok";
      verdicts.set(claims, verdict);
    }
    return verdict;
  };
  return (claims, challenges) => {
    const verdict = judge(claims);
    if (verdict === "ok") return undefined;
    // RFC 9068 §4: a token for another audience is invalid here (Kong answers 403).
    if (verdict === "audience") return new AuthError({ error: "invalid_token", description: "the token is not meant for this audience ('audience_required')", challenges });
    return new AuthError({ error: "insufficient_scope", description: "the token lacks a required scope ('scopes_required')", challenges, ...(scope ? { scope } : {}) });
  };
}
