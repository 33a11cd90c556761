import { describe, expect, it } from "bun:test";
import "../../../../../src/plugins/registry.ts"; // the plugins' import cycle, entered where the gateway enters it
import { claimsKept, grantCodec } from "../../../../../src/plugins/openid-connect/authn/token-flow.ts";
import { createUpstreamHeaders, type Grant } from "../../../../../src/plugins/openid-connect/mutate.ts";

const none = { upstream_headers_claims: [], audience_required: [], audience_claim: ["aud"], scopes_required: [], scopes_claim: ["scope"] };
const claims = { sub: "s1", aud: "api", scope: "read write", realm_access: { roles: ["admin"] }, email: "a@example.com", jti: "j" };
const grant: Grant = { token: "header.payload.signature", claims };

describe("what a cached grant keeps of the token's claims", () => {
  it("keeps no claims when neither upstream headers nor requirements read them", () => {
    expect(claimsKept(none)(grant)).toEqual({ token: grant.token, claims: undefined });
  });

  it("keeps the claims copied into upstream headers", () => {
    expect(claimsKept({ ...none, upstream_headers_claims: ["email", "missing"] })(grant).claims).toEqual({ email: "a@example.com" });
  });

  it("keeps the top-level claim of 'audience_claim' and 'scopes_claim' when their requirement is set", () => {
    expect(claimsKept({ ...none, audience_required: ["api"] })(grant).claims).toEqual({ aud: "api" });
    expect(claimsKept({ ...none, scopes_required: ["admin"], scopes_claim: ["realm_access", "roles"] })(grant).claims).toEqual({
      realm_access: { roles: ["admin"] },
    });
    expect(claimsKept({ ...none, audience_claim: ["sub"], scopes_claim: ["jti"] })(grant).claims).toBeUndefined();
  });

  it("leaves an opaque token's grant as it is", () => {
    const opaque: Grant = { token: "opaque", claims: undefined };
    expect(claimsKept({ ...none, upstream_headers_claims: ["email"] })(opaque)).toBe(opaque);
  });
});

describe("upstream headers of a grant", () => {
  const context = () => {
    const upstreamHeaders = new Headers({ "x-email": "forged", authorization: "Basic Y2xpZW50OnNlY3JldA==" });
    return { c: { var: { upstreamHeaders } } as never, upstreamHeaders };
  };

  it("send the token with its prefix and the claim headers, in place of the caller's headers of those names", () => {
    const apply = createUpstreamHeaders({
      upstream_access_token_header: { name: "authorization", prefix: "Bearer " },
      upstream_headers_claims: ["email"],
      upstream_headers_names: ["X-Email"],
    } as never);
    for (let i = 0; i < 2; i++) {
      const { c, upstreamHeaders } = context();
      apply(c, grant);
      expect(upstreamHeaders.get("authorization")).toBe(`Bearer ${grant.token}`);
      expect(upstreamHeaders.get("x-email")).toBe("a@example.com");
    }
  });

  it("remove a caller's claim header when the grant has no such claim", () => {
    const apply = createUpstreamHeaders({
      upstream_access_token_header: { name: "authorization", prefix: "Bearer " },
      upstream_headers_claims: ["email"],
      upstream_headers_names: ["X-Email"],
    } as never);
    const { c, upstreamHeaders } = context();
    apply(c, { token: "opaque", claims: undefined });
    expect(upstreamHeaders.get("authorization")).toBe("Bearer opaque");
    expect(upstreamHeaders.has("x-email")).toBe(false);
  });
});

describe("a cached grant, packed", () => {
  const b64u = (s: string) => Buffer.from(s).toString("base64url");
  const jwt = `${b64u('{"alg":"ES256"}')}.${b64u('{"sub":"s1","iss":"https://idp.example"}')}.${b64u("x".repeat(64))}`;

  it("is a number holding the token and its kept claims, and gives both back equal", () => {
    const codec = grantCodec();
    for (const claims of [undefined, {}, { sub: "s1" }, { name: "Zoë \u{1f600}", roles: ["a", "b"], n: 1.5, ok: true, none: null }]) {
      const packed = codec.pack({ token: jwt, claims });
      expect(typeof packed).toBe("number");
      expect(codec.unpack(packed)).toEqual({ token: jwt, claims });
    }
  });

  it("stays a grant object when its token is not ASCII", () => {
    const codec = grantCodec();
    const odd: Grant = { token: "t\u00f6ken", claims: { sub: "s1" } };
    const packed = codec.pack(odd);
    expect(codec.unpack(packed)).toBe(odd);
    codec.free(packed);
  });
});
