import { describe, expect, it } from "bun:test";
import { Hono } from "hono";
import { AuthError } from "../../../../../src/errors.ts";
import type { GatewayEnv } from "../../../../../src/gateway/context.ts";
import {
  formDecode,
  hideCredentials,
  parseBasic,
  readClientCredentials,
  withoutCredentials,
  type FoundCredentials,
} from "../../../../../src/plugins/openid-connect/authn/credentials.ts";
import type { ParamType } from "../../../../../src/plugins/openid-connect/schema.ts";

const basic = (text: string) => `Basic ${btoa(text)}`;

describe("Basic client credentials (RFC 7617, RFC 6749 Appendix B)", () => {
  it("reads client_id:client_secret", () => {
    expect(parseBasic(basic("service:cf4c655a-0622-4ce6-a0de-d3353ef0b714"))).toEqual({
      clientId: "service",
      clientSecret: "cf4c655a-0622-4ce6-a0de-d3353ef0b714",
    });
  });

  it("takes the scheme case-insensitively and splits at the first colon", () => {
    expect(parseBasic(`bAsIc   ${btoa("id:se:cret")}`)).toEqual({ clientId: "id", clientSecret: "se:cret" });
  });

  it("form-decodes id and secret as Appendix B requires", () => {
    expect(parseBasic(basic("my%20client:p%2Bw+d%3A%25"))).toEqual({ clientId: "my client", clientSecret: "p+w d:%" });
    expect(formDecode("a+b%2B")).toBe("a b+");
  });

  it("decodes UTF-8", () => {
    const bytes = new TextEncoder().encode("clïent:sécret");
    expect(parseBasic(`Basic ${btoa(String.fromCharCode(...bytes))}`)).toEqual({ clientId: "clïent", clientSecret: "sécret" });
  });

  it("leaves other schemes to other authenticators", () => {
    expect(parseBasic("Bearer abc.def.ghi")).toBeUndefined();
    expect(parseBasic("DPoP abc")).toBeUndefined();
    expect(parseBasic("Basicfoo")).toBeUndefined();
  });

  it.each([
    ["no credentials after the scheme", "Basic"],
    ["blank credentials", "Basic    "],
    ["bad base64", "Basic !!!!"],
    ["base64 of impossible length", "Basic abcde"],
    ["no colon", basic("service")],
    ["an empty client id", basic(":secret")],
    ["an empty secret", basic("service:")],
    ["a broken percent-escape", basic("serv%ice:secret")],
    ["bytes that are not UTF-8", `Basic ${btoa("\xff\xfe:\xff")}`],
    ["two Basic credentials in one header", `${basic("a:b")}, ${basic("c:d")}`],
    ["a header longer than 8 KiB", basic(`id:${"x".repeat(9000)}`)],
  ])("says malformed for %s", (_what, header) => {
    expect(parseBasic(header)).toBe("malformed");
  });
});

describe("query strings without credentials (hide_credentials)", () => {
  it("removes client_id and client_secret and keeps everything else byte for byte", () => {
    expect(withoutCredentials("?a=b%20c&client_id=x&client_secret=y&d=e+f")).toBe("?a=b%20c&d=e+f");
    expect(withoutCredentials("?client_id=x&client_secret=y")).toBe("");
    expect(withoutCredentials("?client%5Fid=x&q=1")).toBe("?q=1");
    expect(withoutCredentials("")).toBe("");
  });
});

/** Runs `readClientCredentials` inside a real Hono context and reports what it saw and left. */
async function read(request: Request, types: readonly ParamType[] = ["header", "query", "body"], hide = true) {
  const app = new Hono<GatewayEnv>();
  let found: FoundCredentials | undefined;
  let error: unknown;
  let upstream: { headers: Headers; search: string | undefined; body: string | undefined } | undefined;
  app.all("*", async (c) => {
    c.set("upstreamHeaders", new Headers(c.req.raw.headers));
    c.set("logFields", {});
    try {
      found = await readClientCredentials(c, types, { hide, challenges: [{ scheme: "Basic" }] });
      if (found && hide) hideCredentials(c, found);
    } catch (e) {
      error = e;
    }
    const body = c.var.upstreamBody;
    upstream = { headers: c.var.upstreamHeaders, search: c.var.upstreamSearch, body: body ? await new Response(body).text() : undefined };
    return c.text("ok");
  });
  await app.fetch(request);
  return { found, error, upstream: upstream! };
}

describe("reading client credentials from a request", () => {
  it("prefers the Authorization header, then the query, then the body", async () => {
    const r = await read(
      new Request("http://gw/x?client_id=q&client_secret=qs", {
        method: "POST",
        headers: { authorization: basic("h:hs"), "content-type": "application/x-www-form-urlencoded" },
        body: "client_id=b&client_secret=bs",
      }),
    );
    expect(r.found).toEqual({ clientId: "h", clientSecret: "hs", source: "header" });
    expect(r.upstream.headers.has("authorization")).toBe(false);
  });

  it("ignores places client_credentials_param_type does not list", async () => {
    const r = await read(new Request("http://gw/x?client_id=q&client_secret=qs", { headers: { authorization: basic("h:hs") } }), ["body"]);
    expect(r.found).toBeUndefined();
  });

  it("reads the query and hides the credentials from the upstream's query", async () => {
    const r = await read(new Request("http://gw/x?page=2&client_id=q%20id&client_secret=s%2B1"));
    expect(r.found).toEqual({ clientId: "q id", clientSecret: "s+1", source: "query" });
    expect(r.upstream.search).toBe("?page=2");
  });

  it("reads a form body, and forwards it without the credentials", async () => {
    const r = await read(
      new Request("http://gw/x", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "a=1&client_id=b&client_secret=bs&z=%20",
      }),
    );
    expect(r.found).toEqual({ clientId: "b", clientSecret: "bs", source: "body" });
    expect(r.upstream.body).toBe("a=1&z=%20");
    expect(r.upstream.headers.get("content-length")).toBe("9");
  });

  it("reads a JSON body", async () => {
    const r = await read(
      new Request("http://gw/x", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ client_id: "j", client_secret: "js", keep: true }),
      }),
    );
    expect(r.found).toEqual({ clientId: "j", clientSecret: "js", source: "body" });
    expect(JSON.parse(r.upstream.body!)).toEqual({ keep: true });
  });

  it("forwards a body without credentials exactly as sent", async () => {
    const r = await read(new Request("http://gw/x", { method: "POST", headers: { "content-type": "application/json" }, body: '{"a":  1}' }));
    expect(r.found).toBeUndefined();
    expect(r.upstream.body).toBe('{"a":  1}');
  });

  it("keeps the credentials upstream when hide_credentials is off", async () => {
    const r = await read(
      new Request("http://gw/x", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "client_id=b&client_secret=bs",
      }),
      ["body"],
      false,
    );
    expect(r.found?.clientId).toBe("b");
    expect(r.upstream.body).toBe("client_id=b&client_secret=bs");
  });

  it("never parses a body larger than 64 KiB, and still forwards all of it", async () => {
    const big = `client_id=b&client_secret=bs&pad=${"x".repeat(1024 * 1024)}`;
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode(big.slice(0, 40_000)));
        c.enqueue(new TextEncoder().encode(big.slice(40_000, 80_000)));
        c.enqueue(new TextEncoder().encode(big.slice(80_000)));
        c.close();
      },
    });
    const r = await read(
      new Request("http://gw/x", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: stream,
        duplex: "half",
      } as RequestInit),
    );
    expect(r.found).toBeUndefined();
    expect(r.upstream.body?.length).toBe(big.length);
  });

  it("rejects a malformed Basic header with a 401, never a 500", async () => {
    const r = await read(new Request("http://gw/x", { headers: { authorization: "Basic %%%" } }));
    expect(r.error).toBeInstanceOf(AuthError);
    expect((r.error as AuthError).status).toBe(401);
  });

  it("finds nothing when nothing is there", async () => {
    const r = await read(new Request("http://gw/x?client_id=only-the-id"));
    expect(r.found).toBeUndefined();
    expect(r.error).toBeUndefined();
  });
});
