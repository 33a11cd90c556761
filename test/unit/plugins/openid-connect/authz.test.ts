import { describe, expect, it } from "bun:test";
import "../../../../src/plugins/registry.ts"; // the plugins' import cycle, entered where the gateway enters it
import { AuthError, type Challenge } from "../../../../src/errors.ts";
import { errorResponse } from "../../../../src/gateway/error-response.ts";
import { createCallerIdentity } from "../../../../src/plugins/openid-connect/caller-identity.ts";
import {
  claimAt,
  claimValues,
  createRequirementCheck,
  listClaimValues,
  parseRequirement,
  satisfies,
  type RequirementsConfig,
} from "../../../../src/plugins/openid-connect/authz.ts";
import { claimsKept } from "../../../../src/plugins/openid-connect/authn/token-flow.ts";

const none: RequirementsConfig = {
  audience_required: [],
  audience_claim: ["aud"],
  scopes_required: [],
  scopes_claim: ["scope"],
  groups_required: [],
  groups_claim: ["groups"],
  roles_required: [],
  roles_claim: ["roles"],
  claims_forbidden: [],
  forbidden_error_message: "Forbidden",
};
const challenges: Challenge[] = [{ scheme: "Bearer", params: { realm: "oidc-gateway" } }];
const keycloak = {
  sub: "s1",
  aud: ["billing", "account"],
  scope: "openid api",
  groups: ["/staff", "ops"],
  realm_access: { roles: ["offline_access", "invoice-reader"] },
  resource_access: { billing: { roles: ["payer", "auditor"] }, "my.client": { roles: ["dotted"] } },
};

const check = (config: Partial<RequirementsConfig>) => createRequirementCheck({ ...none, ...config });

describe("Kong's requirement lists", () => {
  it("read entries as alternatives and the space-separated values inside one entry as all needed", () => {
    const requirement = parseRequirement(["read write", "admin", "  "]);
    expect(requirement).toEqual([["read", "write"], ["admin"]]);
    expect(satisfies(new Set(["read", "write"]), requirement)).toBe(true);
    expect(satisfies(new Set(["admin"]), requirement)).toBe(true);
    expect(satisfies(new Set(["read"]), requirement)).toBe(false);
    expect(satisfies(new Set(), [])).toBe(true);
  });

  it("find nested claims by path and treat a path that leads nowhere as absent", () => {
    expect(claimAt(keycloak, ["realm_access", "roles"])).toEqual(["offline_access", "invoice-reader"]);
    expect(claimAt(keycloak, ["resource_access", "my.client", "roles"])).toEqual(["dotted"]);
    expect(claimAt(keycloak, ["resource_access", "other", "roles"])).toBeUndefined();
    expect(claimAt(keycloak, ["groups", "0"])).toBeUndefined(); // arrays are not walked
    expect(claimAt(keycloak, ["constructor"])).toBeUndefined(); // only the claims' own keys
    expect(claimAt(keycloak, ["sub", "length"])).toBeUndefined();
  });

  it("read a scope claim as a space-separated string", () => {
    expect([...claimValues("openid  api", true)]).toEqual(["openid", "api"]);
    expect([...claimValues("openid api", false)]).toEqual(["openid api"]);
  });

  it("accept a list claim as an array of strings or one string, and refuse any other type", () => {
    expect([...(listClaimValues(["a", "b"]) as Set<string>)]).toEqual(["a", "b"]);
    expect([...(listClaimValues("a b") as Set<string>)]).toEqual(["a b"]);
    expect((listClaimValues(undefined) as Set<string>).size).toBe(0);
    expect((listClaimValues(null) as Set<string>).size).toBe(0);
    expect(listClaimValues(42)).toBe("invalid");
    expect(listClaimValues({ admin: true })).toBe("invalid");
    expect(listClaimValues(["admin", 1])).toBe("invalid");
  });
});

describe("the requirement check of openid-connect", () => {
  it("is absent when nothing is required", () => {
    expect(check({})).toBeUndefined();
  });

  it("lets in a token with one of the required groups", () => {
    expect(check({ groups_required: ["admins", "ops"] })!(keycloak, challenges)).toBeUndefined();
  });

  it("refuses a token without the required groups: 403 insufficient_scope with Kong's forbidden message", () => {
    const refusal = check({ groups_required: ["admins"], forbidden_error_message: "Go away" })!(keycloak, challenges)!;
    expect(refusal).toBeInstanceOf(AuthError);
    expect(refusal.status).toBe(403);
    expect(refusal.error).toBe("insufficient_scope");
    const res = errorResponse(refusal);
    expect(res.status).toBe(403);
    expect(res.headers.get("www-authenticate")).toBe(
      `Bearer realm="oidc-gateway", error="insufficient_scope", error_description="the token lacks a required group ('groups_required')"`,
    );
    expect(res.headers.get("content-type")).toContain("application/json");
    return res.json().then((body) => expect(body).toEqual({ message: "Go away" }));
  });

  it("needs every space-separated role of an entry, in Keycloak's realm roles", () => {
    const both = check({ roles_required: ["invoice-reader offline_access"], roles_claim: ["realm_access", "roles"] })!;
    expect(both(keycloak, challenges)).toBeUndefined();
    const more = check({ roles_required: ["invoice-reader invoice-writer"], roles_claim: ["realm_access", "roles"] })!;
    expect(more(keycloak, challenges)?.description).toContain("roles_required");
  });

  it("reads a client's roles under resource_access", () => {
    const payer = check({ roles_required: ["payer"], roles_claim: ["resource_access", "billing", "roles"] })!;
    expect(payer(keycloak, challenges)).toBeUndefined();
    const other = check({ roles_required: ["payer"], roles_claim: ["resource_access", "shipping", "roles"] })!;
    expect(other(keycloak, challenges)?.status).toBe(403);
  });

  it("refuses a missing claim and a claim of the wrong type, and never crashes on either", () => {
    const roles = check({ roles_required: ["admin"] })!;
    expect(roles({ sub: "x" }, challenges)?.status).toBe(403);
    expect(roles({ roles: 1 }, challenges)?.status).toBe(403);
    expect(roles({ roles: { admin: true } }, challenges)?.status).toBe(403);
    expect(roles({ roles: ["admin", 7] }, challenges)?.status).toBe(403);
    expect(roles({ roles: "admin" }, challenges)).toBeUndefined();
  });

  it("refuses a caller without claims (an opaque token) whenever something is required", () => {
    expect(check({ groups_required: ["ops"] })!(undefined, challenges)?.status).toBe(403);
    expect(check({ audience_required: ["api"] })!(undefined, challenges)?.status).toBe(401);
    expect(check({ claims_forbidden: ["act"] })!(undefined, challenges)).toBeUndefined();
  });

  it("refuses a token that carries a forbidden claim", () => {
    const noDelegation = check({ claims_forbidden: ["act", "may_act"] })!;
    expect(noDelegation(keycloak, challenges)).toBeUndefined();
    expect(noDelegation({ ...keycloak, act: { sub: "someone" } }, challenges)?.description).toContain("claims_forbidden");
  });

  it("answers 401 invalid_token for another audience and 403 with the scope for a missing scope", () => {
    expect(check({ audience_required: ["shipping"] })!(keycloak, challenges)?.status).toBe(401);
    const scoped = check({ scopes_required: ["admin write"] })!(keycloak, challenges)!;
    expect(scoped.status).toBe(403);
    expect(scoped.scope).toBe("admin write");
  });

  it("remembers its verdict per claims object", () => {
    const groups = check({ groups_required: ["ops"] })!;
    const claims = { groups: ["ops"] };
    expect(groups(claims, challenges)).toBeUndefined();
    (claims.groups as string[]).length = 0; // a cached token's claims never change; the verdict is not re-derived
    expect(groups(claims, challenges)).toBeUndefined();
  });
});

describe("the caller's identity from its claims", () => {
  it("takes the authenticated groups from a nested claim, joined for X-Authenticated-Groups", () => {
    const identity = createCallerIdentity({ authenticated_groups_claim: ["realm_access", "roles"] })(keycloak);
    expect(identity.groups).toEqual(["offline_access", "invoice-reader"]);
    expect(identity.groupsHeader).toBe("offline_access, invoice-reader");
    expect(identity.sub).toBe("s1");
  });

  it("has no groups when the claim is absent or of the wrong type, and names the client by client_id or azp", () => {
    const identify = createCallerIdentity({ authenticated_groups_claim: ["groups"] });
    expect(identify({ groups: 3, azp: "billing" })).toMatchObject({ groups: undefined, clientId: "billing" });
    expect(identify({ client_id: "svc", azp: "other" }).clientId).toBe("svc");
    expect(identify(undefined).groups).toBeUndefined();
  });
});

describe("what a cached grant keeps for groups, roles and the access log", () => {
  const grant = { token: "t", claims: { ...keycloak, client_id: "billing", email: "e" } };
  const base = { upstream_headers_claims: [], audience_required: [], audience_claim: ["aud"], scopes_required: [], scopes_claim: ["scope"] };

  it("keeps the top-level claims the groups, roles, forbidden-claims and authenticated-groups settings read", () => {
    const kept = claimsKept({
      ...base,
      groups_required: ["ops"],
      groups_claim: ["groups"],
      roles_required: ["payer"],
      roles_claim: ["resource_access", "billing", "roles"],
      claims_forbidden: ["act"],
      authenticated_groups_claim: ["realm_access", "roles"],
    })(grant);
    expect(Object.keys(kept.claims!).sort()).toEqual(["groups", "realm_access", "resource_access"]);
  });

  it("keeps client_id, azp and sub for the access log only when asked", () => {
    expect(claimsKept(base)(grant).claims).toBeUndefined();
    expect(claimsKept(base, { identity: true })(grant).claims).toEqual({ client_id: "billing", sub: "s1" });
  });
});
