/**
 * Kong's `audience_required` / `scopes_required` / `groups_required` / `roles_required`: each entry of the list is an alternative
 * (OR), and the space-separated values inside one entry are all required (AND). So
 * `["read write", "admin"]` lets in a token with both `read` and `write`, or with `admin`.
 * The values are read from the claim at `audience_claim` / `scopes_claim` / `groups_claim` /
 * `roles_claim`, a path into the claims (`["realm_access", "roles"]` is `claims.realm_access.roles`);
 * a path that leads nowhere is an absent claim. `claims_forbidden` refuses tokens carrying any of
 * the named top-level claims.
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
    if (!value || typeof value !== "object" || Array.isArray(value) || !Object.hasOwn(value, name)) return undefined;
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

/**
 * The values of a list claim (`groups`, `roles`): an array of strings, or one string. Absent
 * (undefined, or null) is the empty set; any other type (a number, an object, an array holding
 * non-strings) is `"invalid"`: refused, never coerced.
 */
export function listClaimValues(value: unknown): ReadonlySet<string> | "invalid" {
  if (value === undefined || value === null) return new Set();
  if (typeof value === "string") return new Set([value]);
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return new Set(value as string[]);
  return "invalid";
}

export interface RequirementsConfig {
  readonly audience_required: readonly string[];
  readonly audience_claim: readonly string[];
  readonly scopes_required: readonly string[];
  readonly scopes_claim: readonly string[];
  readonly groups_required: readonly string[];
  readonly groups_claim: readonly string[];
  readonly roles_required: readonly string[];
  readonly roles_claim: readonly string[];
  readonly claims_forbidden: readonly string[];
  readonly forbidden_error_message: string;
}

type Verdict = "ok" | "audience" | "scope" | "groups" | "roles" | "forbidden";

/** A list requirement (`groups_required`, `roles_required`) against the claim at `path`: a wrong type fails it. */
function listSatisfies(claims: Readonly<Record<string, unknown>>, path: readonly string[], requirement: Requirement): boolean {
  if (requirement.length === 0) return true;
  const values = listClaimValues(claimAt(claims, path));
  return values !== "invalid" && satisfies(values, requirement);
}

/**
 * The check of `audience_required`, `scopes_required`, `groups_required`, `roles_required` and
 * `claims_forbidden`, built once per plugin instance, or `undefined` when none is configured. It
 * returns the refusal of `claims` (an `AuthError` with `challenges`) or `undefined`. A verdict is
 * remembered per claims object (the one the token cache holds), so a cached token costs one
 * WeakMap lookup, not a claim walk.
 */
export function createRequirementCheck(
  config: RequirementsConfig,
): ((claims: Readonly<Record<string, unknown>> | undefined, challenges: readonly Challenge[]) => AuthError | undefined) | undefined {
  const audience = parseRequirement(config.audience_required);
  const scopes = parseRequirement(config.scopes_required);
  const groups = parseRequirement(config.groups_required);
  const roles = parseRequirement(config.roles_required);
  const forbidden = config.claims_forbidden;
  if (audience.length === 0 && scopes.length === 0 && groups.length === 0 && roles.length === 0 && forbidden.length === 0) return undefined;
  const scope = scopes[0]?.join(" ");
  const forbiddenMessage = config.forbidden_error_message;
  const verdicts = new WeakMap<object, Verdict>();
  const judge = (claims: Readonly<Record<string, unknown>>): Verdict => {
    if (!satisfies(claimValues(claimAt(claims, config.audience_claim), false), audience)) return "audience";
    if (!satisfies(claimValues(claimAt(claims, config.scopes_claim), true), scopes)) return "scope";
    if (!listSatisfies(claims, config.groups_claim, groups)) return "groups";
    if (!listSatisfies(claims, config.roles_claim, roles)) return "roles";
    if (forbidden.some((name) => Object.hasOwn(claims, name))) return "forbidden";
    return "ok";
  };
  // A caller with no claims to look at fails every requirement; with only `claims_forbidden`, it has none of them.
  const first: Verdict = audience.length ? "audience" : scopes.length ? "scope" : groups.length ? "groups" : roles.length ? "roles" : "ok";
  return (claims, challenges) => {
    let verdict: Verdict | undefined;
    if (!claims) verdict = first;
    else {
      verdict = verdicts.get(claims);
      if (verdict === undefined) {
        verdict = judge(claims);
        verdicts.set(claims, verdict);
      }
    }
    switch (verdict) {
      case "ok":
        return undefined;
      // RFC 9068 §4: a token for another audience is invalid here (Kong answers 403).
      case "audience":
        return new AuthError({ error: "invalid_token", description: "the token is not meant for this audience ('audience_required')", challenges });
      case "scope":
        return new AuthError({
          error: "insufficient_scope",
          description: "the token lacks a required scope ('scopes_required')",
          challenges,
          forbiddenMessage,
          ...(scope ? { scope } : {}),
        });
      // RFC 6750 §3.1 `insufficient_scope`: the token is valid, but does not grant this resource.
      case "groups":
        return new AuthError({
          error: "insufficient_scope",
          description: "the token lacks a required group ('groups_required')",
          challenges,
          forbiddenMessage,
        });
      case "roles":
        return new AuthError({
          error: "insufficient_scope",
          description: "the token lacks a required role ('roles_required')",
          challenges,
          forbiddenMessage,
        });
      case "forbidden":
        return new AuthError({
          error: "insufficient_scope",
          description: "the token carries a forbidden claim ('claims_forbidden')",
          challenges,
          forbiddenMessage,
        });
    }
  };
}
