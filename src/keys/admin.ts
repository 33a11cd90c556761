/**
 * Where the public JWKS is served: `GET /openid-connect/jwks` on the admin API (Kong's path; the
 * URL to give an IdP as the client's JWKS URL), optionally `[keys] publish_path` on the proxy
 * listener, and `DELETE /openid-connect/jwks` to rotate.
 *
 * Caching suits an IdP that polls: `no-cache` with a strong `ETag`, so every poll revalidates
 * (a `304` costs nothing) and a rotation is seen on the next one. A `max-age` would let an HTTP
 * cache in front of the IdP serve the old set after a rotation, when the IdP refetches because
 * it sees an unknown `kid`.
 */
import type { Hono } from "hono";
import type { KeyStore, PublicJwks } from "./types.ts";
import { KeyStoreUnavailableError } from "../errors.ts";

const JWKS_PATH = "/openid-connect/jwks";

/** RFC 9110 §13.1.2: `If-None-Match` is a list of entity tags, or `*`. */
function matches(ifNoneMatch: string | null, etag: string): boolean {
  if (ifNoneMatch === null) return false;
  if (ifNoneMatch.trim() === "*") return true;
  return ifNoneMatch.split(",").some((tag) => tag.trim().replace(/^W\//, "") === etag);
}

/** The JWKS response for `request` (200 with the set, or 304 when the caller has it). */
export function jwksResponse(request: Request, jwks: PublicJwks): Response {
  const headers = { etag: jwks.etag, "cache-control": "no-cache" };
  if (matches(request.headers.get("if-none-match"), jwks.etag)) return new Response(null, { status: 304, headers });
  const json = { ...headers, "content-type": "application/json" };
  // HEAD gets GET's headers, the body's length included (a bodiless answer would say 0).
  if (request.method === "HEAD") return new Response(null, { status: 200, headers: { ...json, "content-length": String(jwks.length) } });
  return new Response(jwks.body, { status: 200, headers: json });
}

/** The handler for `[keys] publish_path` on the proxy listener. */
export function publishedJwks(keys: KeyStore): (request: Request) => Promise<Response> {
  return (request) => served(keys, request);
}

/** Whoever fetched the JWKS (the IdP) now has its keys: they may sign. A HEAD fetches nothing. */
async function served(keys: KeyStore, request: Request): Promise<Response> {
  const jwks = await keys.publicJwks();
  const response = jwksResponse(request, jwks);
  if (request.method === "GET" && (response.status === 200 || response.status === 304)) keys.jwksServed(jwks);
  return response;
}

/** The fleet's Redis is down: 503 with the reason (the store's own failures stay 500s). */
async function unlessUnavailable(refused: string, run: () => Promise<Response>): Promise<Response> {
  try {
    return await run();
  } catch (error) {
    if (!(error instanceof KeyStoreUnavailableError)) throw error;
    return Response.json({ message: `the fleet's redis is unreachable; ${refused}` }, { status: 503 });
  }
}

/** The admin routes; the store logs what a rotation did. */
export function keysAdmin(app: Hono, keys: KeyStore): void {
  app.get(JWKS_PATH, (c) => unlessUnavailable("no signing keys are known yet", () => served(keys, c.req.raw)));
  app.delete(JWKS_PATH, (c) =>
    unlessUnavailable("rotation refused", async () => {
      await keys.rotate({ immediate: c.req.query("immediate") === "true" });
      return c.body(null, 204);
    }),
  );
}
