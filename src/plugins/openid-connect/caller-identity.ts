/**
 * Who the caller is, read from the claims of its token once per claims object (the one the token
 * cache holds): the authenticated groups (`authenticated_groups_claim`) and the names the access
 * log gives the caller (`client_id`, `sub`). Computed once, remembered in a WeakMap: a cached
 * token costs one lookup per request.
 */
import { claimAt, listClaimValues } from "./authz.ts";

export interface CallerIdentity {
  /** Values of `authenticated_groups_claim`; undefined when unset, absent or of a wrong type. */
  readonly groups: readonly string[] | undefined;
  /** `X-Authenticated-Groups`: the groups joined by ", " as Kong sends them. */
  readonly groupsHeader: string | undefined;
  /** The OAuth client the token was issued to (`client_id`, else `azp`), for the access log. */
  readonly clientId: string | undefined;
  readonly sub: string | undefined;
}

export interface IdentitySettings {
  readonly authenticated_groups_claim?: readonly string[] | undefined;
}

const NONE: CallerIdentity = { groups: undefined, groupsHeader: undefined, clientId: undefined, sub: undefined };

const stringClaim = (value: unknown) => (typeof value === "string" && value.length <= 256 ? value : undefined);

/** Header values cannot carry CR, LF or NUL: a group holding them is not a group we forward. */
const HEADER_SAFE = /^[^\r\n\0]*$/;

export function createCallerIdentity(settings: IdentitySettings): (claims: Readonly<Record<string, unknown>> | undefined) => CallerIdentity {
  const groupsPath = settings.authenticated_groups_claim;
  const known = new WeakMap<object, CallerIdentity>();
  return (claims) => {
    if (!claims) return NONE;
    let identity = known.get(claims);
    if (identity) return identity;
    let groups: readonly string[] | undefined;
    if (groupsPath) {
      const values = listClaimValues(claimAt(claims, groupsPath));
      if (values !== "invalid" && values.size > 0 && [...values].every((g) => HEADER_SAFE.test(g))) groups = [...values];
    }
    identity = {
      groups,
      groupsHeader: groups?.join(", "),
      clientId: stringClaim(claims.client_id) ?? stringClaim(claims.azp),
      sub: stringClaim(claims.sub),
    };
    known.set(claims, identity);
    return identity;
  };
}
