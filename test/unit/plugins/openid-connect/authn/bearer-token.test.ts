/**
 * The access token in the body (RFC 6750 §2.2), as openid-connect reads it inside a real Hono
 * context (`presentedToken`, src/plugins/openid-connect/authn/bearer-token.ts): the body the upstream
 * will get is read without being lost, and a second token anywhere else is refused. Header and
 * query are in bearer-request.test.ts.
 */
import { describe, expect, it } from "bun:test";
import { Hono } from "hono";
import { AuthError } from "../../../../../src/errors.ts";
import type { GatewayEnv } from "../../../../../src/gateway/context.ts";
import type { BearerParamType, PresentedToken } from "../../../../../src/oidc/resource/bearer-request.ts";
import { presentedToken } from "../../../../../src/plugins/openid-connect/authn/bearer-token.ts";
import { MAX_CREDENTIALS_BODY } from "../../../../../src/plugins/openid-connect/authn/credentials.ts";

const JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
const ALL: readonly BearerParamType[] = ["header", "query", "body"];

function req(init: { auth?: string; url?: string; method?: string; body?: string; type?: string } = {}): Request {
  const headers = new Headers();
  if (init.auth !== undefined) headers.set("authorization", init.auth);
  if (init.type) headers.set("content-type", init.type);
  return new Request(init.url ?? "http://localhost:8000/r", {
    method: init.method ?? (init.body ? "POST" : "GET"),
    headers,
    ...(init.body ? { body: init.body } : {}),
  });
}

/** `presentedToken` for `request` inside a Hono handler: what it found, or what it threw. */
async function present(request: Request, paramTypes: readonly BearerParamType[] = ALL): Promise<PresentedToken | undefined> {
  const app = new Hono<GatewayEnv>();
  let outcome: { value?: PresentedToken | undefined; error?: unknown } = {};
  app.all("*", async (c) => {
    try {
      outcome = { value: await presentedToken(c, paramTypes, true) };
    } catch (error) {
      outcome = { error };
    }
    return c.body(null, 204);
  });
  await app.fetch(request);
  if ("error" in outcome) throw outcome.error;
  return outcome.value;
}

/** `request` is refused with an `AuthError` of `code` (400 for `invalid_request`). */
async function expectRefusal(request: Request, code: string): Promise<void> {
  const refused = present(request);
  await expect(refused).rejects.toBeInstanceOf(AuthError);
  await expect(refused).rejects.toMatchObject({ error: code });
}

describe("the access_token body parameter (RFC 6750 §2.2) per bearer_token_param_type", () => {
  it("is read from a form body and leaves the body for the upstream", async () => {
    const request = req({ body: `a=1&access_token=${JWT}`, type: "application/x-www-form-urlencoded" });
    expect(await present(request)).toEqual({ token: JWT, scheme: "Bearer", source: "body" });
    expect(await request.text()).toBe(`a=1&access_token=${JWT}`);
  });

  it("is read from a JSON body", async () => {
    expect((await present(req({ body: JSON.stringify({ access_token: JWT }), type: "application/json" })))?.source).toBe("body");
  });

  it("is not read from a body larger than the limit", async () => {
    const body = `access_token=${JWT}&pad=${"x".repeat(MAX_CREDENTIALS_BODY)}`;
    expect(await present(req({ body, type: "application/x-www-form-urlencoded" }))).toBeUndefined();
  });

  it("is not read from GET bodies or other content types", async () => {
    expect(await present(req({ body: `access_token=${JWT}`, type: "text/plain" }))).toBeUndefined();
  });

  it("is not read from the body when only the header is allowed", async () => {
    expect(await present(req({ body: `access_token=${JWT}`, type: "application/x-www-form-urlencoded" }), ["header"])).toBeUndefined();
  });

  it("answers 400 invalid_request when sent in the header and the body", async () => {
    await expectRefusal(req({ auth: `Bearer ${JWT}`, body: `access_token=${JWT}`, type: "application/x-www-form-urlencoded" }), "invalid_request");
  });

  it("answers 400 invalid_request for a body access_token that is not a string", async () => {
    await expectRefusal(req({ body: JSON.stringify({ access_token: 1 }), type: "application/json" }), "invalid_request");
  });
});
