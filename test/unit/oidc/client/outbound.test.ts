import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { IdpError } from "../../../../src/errors.ts";
import { createIdpFetch, getJson, MAX_METADATA_BYTES } from "../../../../src/oidc/client/outbound.ts";
import { bunRuntime } from "../../../../src/runtime/bun.ts";

/** A small server that misbehaves in the ways IdPs do. */
let server: ReturnType<typeof Bun.serve>;
let base: string;
beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const path = new URL(req.url).pathname;
      if (path === "/ok") return Response.json({ issuer: "x" });
      if (path === "/huge") {
        // Streamed, so no Content-Length warns us.
        let sent = 0;
        return new Response(
          new ReadableStream({
            pull(c) {
              if (sent > MAX_METADATA_BYTES + 100_000) return c.close();
              c.enqueue(new TextEncoder().encode(" ".repeat(64 * 1024)));
              sent += 64 * 1024;
            },
          }),
          { headers: { "content-type": "application/json" } },
        );
      }
      if (path === "/html") return new Response("<html>", { headers: { "content-type": "text/html" } });
      if (path === "/array") return Response.json([1, 2]);
      if (path === "/moved") return new Response(null, { status: 302, headers: { location: "/ok" } });
      if (path === "/missing") return new Response("not found", { status: 404 });
      if (path === "/slow") {
        await Bun.sleep(2000);
        return Response.json({});
      }
      return new Response("boom", { status: 500 });
    },
  });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(() => server.stop(true));

const fetch = () => createIdpFetch({ runtime: bunRuntime, trustedCertificates: [] }, { timeout: 300, sslVerify: true });
async function failure(path: string) {
  const error = await getJson(fetch(), `${base}${path}?secret=not-for-logs`, "discovery document", 300).catch((e) => e);
  expect(error).toBeInstanceOf(IdpError);
  expect(error.detail).not.toContain("not-for-logs");
  return error as IdpError;
}

describe("calls to the IdP", () => {
  it("read a JSON object", async () => {
    expect((await getJson(fetch(), `${base}/ok`, "discovery document", 300)).json).toEqual({ issuer: "x" });
  });

  it("refuse a body larger than 1 MiB, even without a Content-Length", async () => {
    expect((await failure("/huge")).detail).toContain(`body larger than ${MAX_METADATA_BYTES} bytes`);
  });

  it("refuse what is not a JSON object, redirects and errors, naming the endpoint without its query", async () => {
    expect((await failure("/html")).detail).toBe(`discovery document at ${base}/html is not JSON`);
    expect((await failure("/array")).detail).toContain("is not a JSON object");
    expect((await failure("/moved")).status).toBe(502);
    expect((await failure("/missing")).status).toBe(503);
    expect((await failure("/boom")).status).toBe(502);
  });

  it("time out (504) and say so", async () => {
    const error = await failure("/slow");
    expect(error.status).toBe(504);
    expect(error.detail).toBe(`${base}/slow did not answer within 300 ms`);
  });
});
