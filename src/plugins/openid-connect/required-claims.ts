/**
 * Kong's `audience_required` / `scopes_required`: each entry of the list is an alternative
 * (OR), and the space-separated values inside one entry are all required (AND). So
 * `["read write", "admin"]` lets in a token with both `read` and `write`, or with `admin`.
 * The values are read from the claim at `audience_claim` / `scopes_claim`, a path into the
 * claims (`["realm_access", "roles"]` is `claims.realm_access.roles`).
 */

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
