/**
 * The issuers admin API (Kong's `/openid-connect/issuers`): what was discovered for each issuer
 * (discovery document and the IdP's public keys), and a way to make the gateway forget it so
 * the next use rediscovers.
 */
import type { Hono } from "hono";
import { issuerRegistry, type Issuer } from "../../oidc/client/issuer.ts";
import type { PluginContext } from "../types.ts";

export function issuersAdmin(app: Hono, ctx: PluginContext): void {
  const registry = issuerRegistry(ctx);
  const notFound = { message: "Not found" };
  /** An id, or an issuer identifier (URL-encoded in the path, or not). */
  const lookup = (param: string): Issuer[] => {
    let value = param;
    try {
      value = decodeURIComponent(param);
    } catch {
      // not percent-encoded: use as is
    }
    return registry.find(value);
  };

  app.get("/openid-connect/issuers", (c) => c.json({ data: registry.list().map((i) => i.view()), next: null }));
  app.get("/openid-connect/issuers/:id{.+}", (c) => {
    const [issuer] = lookup(c.req.param("id"));
    return issuer ? c.json(issuer.view()) : c.json(notFound, 404);
  });
  app.delete("/openid-connect/issuers", (c) => {
    for (const issuer of registry.list()) issuer.forget();
    ctx.log.info("oidc.issuers_forgotten", { count: registry.list().length });
    return c.body(null, 204);
  });
  app.delete("/openid-connect/issuers/:id{.+}", (c) => {
    const found = lookup(c.req.param("id"));
    if (!found.length) return c.json(notFound, 404);
    for (const issuer of found) issuer.forget();
    ctx.log.info("oidc.issuers_forgotten", { count: found.length, issuer: found[0]!.issuer });
    return c.body(null, 204);
  });
}
