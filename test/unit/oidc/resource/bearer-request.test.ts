import { describe, expect, it } from "bun:test";
import { AuthError } from "../../../../src/errors.ts";
import { errorResponse } from "../../../../src/gateway/error-response.ts";
import { assertSchemeFitsBinding, findBearerToken, parseAuthorization, type ExtractOptions } from "../../../../src/oidc/resource/bearer-request.ts";

const JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
const ALL: ExtractOptions = { paramTypes: ["header", "query"], dpop: true };

function req(init: { auth?: string | string[]; url?: string; method?: string; body?: string; type?: string } = {}): Request {
  const headers = new Headers();
  for (const a of init.auth === undefined ? [] : Array.isArray(init.auth) ? init.auth : [init.auth]) headers.append("authorization", a);
  if (init.type) headers.set("content-type", init.type);
  return new Request(init.url ?? "http://localhost:8000/r", {
    method: init.method ?? (init.body ? "POST" : "GET"),
    headers,
    ...(init.body ? { body: init.body } : {}),
  });
}

async function refusal(promise: Promise<unknown> | (() => unknown)): Promise<AuthError> {
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (error) {
    if (error instanceof AuthError) return error;
    throw error;
  }
  throw new Error("expected a refusal");
}

describe("the Authorization header (RFC 6750 §2.1, RFC 9449 §7.1)", () => {
  it.each(["Bearer", "bearer", "BEARER", "bEaReR"])("accepts the scheme %s", async (scheme) => {
    expect(findBearerToken(req({ auth: `${scheme} ${JWT}` }), ALL)).toEqual({ token: JWT, scheme: "Bearer", source: "header" });
  });

  it.each(["DPoP", "dpop", "DPOP"])("accepts the scheme %s when DPoP is on", async (scheme) => {
    expect(findBearerToken(req({ auth: `${scheme} ${JWT}` }), ALL)).toEqual({ token: JWT, scheme: "DPoP", source: "header" });
  });

  it("ignores the DPoP scheme when DPoP is off (no bearer credentials)", async () => {
    expect(findBearerToken(req({ auth: `DPoP ${JWT}` }), { ...ALL, dpop: false })).toBeUndefined();
  });

  it("leaves other schemes to other auth methods", async () => {
    expect(findBearerToken(req({ auth: "Basic c2VydmljZTpzZWNyZXQ=" }), ALL)).toBeUndefined();
  });

  it("finds nothing when there is no header", async () => {
    expect(findBearerToken(req(), ALL)).toBeUndefined();
  });

  it("accepts base64 padding and the b64token characters", async () => {
    expect(findBearerToken(req({ auth: "Bearer aB0-._~+/==" }), ALL)?.token).toBe("aB0-._~+/==");
  });

  it.each([
    ["an extra part", `Bearer ${JWT} extra`],
    ["a tab as separator", `Bearer\t${JWT}`],
    ["a tab after the token", `Bearer ${JWT}\tx`],
    ["no token", "Bearer"],
    ["only spaces after the scheme", "Bearer    "],
    ["a character outside b64token", `Bearer ${JWT}!`],
    ["an empty header", ""],
    ["padding in the middle", "Bearer ab=cd"],
  ])("answers 400 invalid_request for %s", async (_, auth) => {
    const error = await refusal(() => findBearerToken(req({ auth }), ALL));
    expect(error.error).toBe("invalid_request");
    expect(errorResponse(error).status).toBe(400);
  });

  it("answers 400 invalid_request for both the Bearer and the DPoP scheme", async () => {
    const error = await refusal(() => findBearerToken(req({ auth: [`Bearer ${JWT}`, `DPoP ${JWT}`] }), ALL));
    expect(error.error).toBe("invalid_request");
    expect(error.description).toContain("both");
    expect(error.status).toBe(400);
  });

  it("answers 400 invalid_request for two Bearer headers", async () => {
    expect((await refusal(() => findBearerToken(req({ auth: [`Bearer ${JWT}`, `Bearer ${JWT}`] }), ALL))).error).toBe("invalid_request");
  });

  it("parses one field value without a Request", () => {
    expect(parseAuthorization(`Bearer  ${JWT}`, { dpop: false })).toEqual({ token: JWT, scheme: "Bearer" });
    expect(parseAuthorization(null, { dpop: false })).toBeUndefined();
  });
});

// The body parameter (§2.2) is read by openid-connect's presentedToken: openid-connect-bearer-token.test.ts.
describe("the access_token query parameter (RFC 6750 §2.3) per bearer_token_param_type", () => {
  it("is read from the query when allowed", async () => {
    expect(findBearerToken(req({ url: `http://h/r?x=1&access_token=${JWT}` }), ALL)).toEqual({
      token: JWT,
      scheme: "Bearer",
      source: "query",
    });
  });

  it("is not read from the query when only the header is allowed", async () => {
    expect(findBearerToken(req({ url: `http://h/r?access_token=${JWT}` }), { ...ALL, paramTypes: ["header"] })).toBeUndefined();
  });

  it("answers 400 invalid_request when sent by more than one method", async () => {
    const error = await refusal(() => findBearerToken(req({ auth: `Bearer ${JWT}`, url: `http://h/r?access_token=${JWT}` }), ALL));
    expect(error.error).toBe("invalid_request");
    expect(error.description).toContain("more than one method");
  });

  it("answers 400 invalid_request when repeated or empty", async () => {
    expect((await refusal(() => findBearerToken(req({ url: "http://h/r?access_token=a&access_token=b" }), ALL))).error).toBe("invalid_request");
    expect((await refusal(() => findBearerToken(req({ url: "http://h/r?access_token=" }), ALL))).error).toBe("invalid_request");
  });
});

describe("a DPoP-bound token under the Bearer scheme (RFC 9449 §7.2)", () => {
  it("is 401 invalid_token", async () => {
    const presented = findBearerToken(req({ auth: `Bearer ${JWT}` }), ALL)!;
    const error = await refusal(() => assertSchemeFitsBinding(presented, { cnf: { jkt: "abc" } }));
    expect(error.error).toBe("invalid_token");
    expect(errorResponse(error).status).toBe(401);
  });

  it("passes for an unbound token, and for a bound one under the DPoP scheme", async () => {
    assertSchemeFitsBinding({ token: JWT, scheme: "Bearer", source: "header" }, { sub: "x" });
    assertSchemeFitsBinding({ token: JWT, scheme: "DPoP", source: "header" }, { cnf: { jkt: "abc" } });
  });
});

describe("another header than Authorization (bearer_token_header_name)", () => {
  const named: ExtractOptions = { ...ALL, headerName: "x-access-token" };
  const withHeader = (value: string, auth?: string) => {
    const r = req(auth === undefined ? {} : { auth });
    r.headers.set("x-access-token", value);
    return r;
  };

  it.each([
    ["the bare token", JWT, "Bearer"],
    ["the token with the Bearer scheme", `Bearer ${JWT}`, "Bearer"],
    ["the token with the DPoP scheme", `DPoP ${JWT}`, "DPoP"],
  ])("takes %s", async (_what, value, scheme) => {
    expect(findBearerToken(withHeader(value), named)).toEqual({ token: JWT, scheme, source: "header" } as never);
  });

  it("does not read Authorization then", async () => {
    expect(findBearerToken(req({ auth: `Bearer ${JWT}` }), named)).toBeUndefined();
  });

  it.each([
    ["empty", " "],
    ["another scheme", "Basic c2VydmljZTpzZWNyZXQ="],
    ["two values", `${JWT}, ${JWT}`],
  ])("refuses a value that is %s with 400 invalid_request naming the header", async (_what, value) => {
    const error = await refusal(() => findBearerToken(withHeader(value), named));
    expect(error.error).toBe("invalid_request");
    expect(error.description).toContain("'x-access-token'");
  });
});
