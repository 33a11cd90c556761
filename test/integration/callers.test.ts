/**
 * Who is calling and what may they do (issue 17), end to end: the real test IdP issues tokens
 * carrying `groups`, Keycloak's `realm_access.roles` and `resource_access.<client>.roles`; the
 * gateway (the compiled binary unless GATEWAY_RUNTIME says otherwise) authorizes on them.
 */
import { afterAll, beforeAll, describe, expect, it } from "bun:test";
import { startGateway, type GatewayProcess, serverTable } from "../support/gateway-process.ts";
import { startIdpProcess, type IdpProcess } from "../support/idp-process.ts";
import { routePerSetting } from "../support/oidc-suite.ts";
import { startEchoUpstream, type EchoUpstream } from "../support/upstream.ts";

const SECRETS = {
  billing: "billing-secret-0123456789",
  shipping: "shipping-secret-0123456789",
  odd: "odd-secret-0123456789",
  plain: "plain-secret-0123456789",
};
const CLIENT_CLAIMS = {
  billing: {
    groups: ["finance", "staff"],
    realm_access: { roles: ["invoice-reader", "offline_access"] },
    resource_access: { billing: { roles: ["payer"] } },
  },
  shipping: { groups: ["logistics"], realm_access: { roles: ["offline_access"] }, resource_access: { billing: { roles: ["viewer"] } } },
  // Claims of the wrong type: a number where a list is expected, and a delegation claim.
  odd: { groups: 42, realm_access: { roles: "invoice-reader" }, act: { sub: "someone-else" } },
  plain: {},
};
type Client = keyof typeof SECRETS;

let idp: IdpProcess;
let upstream: EchoUpstream;
let gw: GatewayProcess;

/** Route name → the openid-connect settings on it (client credentials, the cached path). */
const ROUTES: Record<string, string> = {
  groups: 'groups_required = ["finance", "ops admins"]\nauthenticated_groups_claim = ["groups"]',
  "groups-and": 'groups_required = ["finance logistics"]',
  realm: 'roles_required = ["invoice-reader"]\nroles_claim = ["realm_access", "roles"]\nforbidden_error_message = "Invoices are for readers"',
  "client-roles": 'roles_required = ["payer"]\nroles_claim = ["resource_access", "billing", "roles"]',
  "no-act": 'claims_forbidden = ["act"]',
  "auth-groups": 'authenticated_groups_claim = ["realm_access", "roles"]',
  "bearer-roles": 'auth_methods = ["bearer"]\nroles_required = ["invoice-reader"]\nroles_claim = ["realm_access", "roles"]',
  mapped: 'consumer_claim = ["client_id"]',
  "mapped-optional": 'consumer_claim = ["client_id"]\nconsumer_optional = true',
  anon: 'consumer_claim = ["client_id"]\nanonymous = "guest"',
  "acl-allow": 'consumer_claim = ["client_id"]',
  "acl-deny": 'consumer_claim = ["client_id"]\nconsumer_optional = true',
  "acl-token-groups": 'authenticated_groups_claim = ["groups"]',
  "acl-anon": 'consumer_claim = ["client_id"]\nanonymous = "guest"',
};

/** Consumers: `billing` is found by custom_id, `shipping` by username, `plain` by neither. */
const CONSUMERS = `
[[consumers]]
username = "billing-app"
custom_id = "billing"
tags = ["finance"]
groups = ["payers"]

[[consumers]]
username = "shipping"
groups = ["logistics"]

[[consumers]]
username = "guest"
groups = ["public"]
`;

/** Plugins besides openid-connect. */
const OTHER_PLUGINS = `
[[plugins]]
name = "acl"
route = "acl-allow"
[plugins.config]
allow = ["payers"]

[[plugins]]
name = "acl"
route = "acl-deny"
[plugins.config]
deny = ["logistics"]

[[plugins]]
name = "acl"
route = "acl-token-groups"
[plugins.config]
allow = ["finance"]

[[plugins]]
name = "acl"
route = "acl-anon"
[plugins.config]
allow = ["payers"]

# Scoped to a consumer on one route: only shipping's calls to /mapped end here.
[[plugins]]
name = "request-termination"
route = "mapped"
consumer = "shipping"
[plugins.config]
status_code = 418
message = "shipping is closed"
`;

function gatewayConfig(): string {
  return `${serverTable()}
${CONSUMERS}
${routePerSetting(upstream.url, idp.issuer, ROUTES)}
${OTHER_PLUGINS}`;
}

beforeAll(async () => {
  upstream = startEchoUpstream();
  idp = await startIdpProcess({
    options: {
      extraClients: Object.entries(SECRETS).map(([client_id, client_secret]) => ({ client_id, client_secret })),
      clientClaims: CLIENT_CLAIMS,
    },
  });
  gw = await startGateway({ config: gatewayConfig() });
}, 30_000);

afterAll(async () => {
  const log = gw?.output.join("\n") ?? "";
  for (const secret of Object.values(SECRETS)) expect(log).not.toContain(secret);
  await gw?.stop();
  await idp?.stop();
  await upstream?.stop();
});

const basic = (client: Client) => `Basic ${btoa(`${client}:${SECRETS[client]}`)}`;

async function call(path: string, client: Client | undefined, headers: Record<string, string> = {}) {
  const res = await fetch(`${gw.proxyUrl}${path}`, { headers: { ...(client ? { authorization: basic(client) } : {}), ...headers } });
  const text = await res.text();
  const body = (() => {
    try {
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  })();
  return {
    status: res.status,
    headers: res.headers,
    body,
    upstream: res.status === 200 ? (body as { headers: Record<string, string> }) : undefined,
    requestId: res.headers.get("x-request-id")!,
  };
}

describe("groups_required", () => {
  it("lets in a client whose token has one of the groups, twice (the second from the token cache)", async () => {
    for (let i = 0; i < 2; i++) expect((await call("/groups", "billing")).status).toBe(200);
  });

  it("refuses a client without them: 403, Kong's Forbidden message, an insufficient_scope challenge", async () => {
    for (let i = 0; i < 2; i++) {
      const res = await call("/groups", "shipping");
      expect(res.status).toBe(403);
      expect(res.body).toEqual({ message: "Forbidden" });
      expect(res.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    }
  });

  it("needs every space-separated group of an entry", async () => {
    expect((await call("/groups-and", "billing")).status).toBe(403);
  });

  it("refuses a token without the claim and one whose claim is a number", async () => {
    expect((await call("/groups", "plain")).status).toBe(403);
    expect((await call("/groups", "odd")).status).toBe(403);
  });
});

describe("roles_required on Keycloak's nested claims", () => {
  it("reads realm_access.roles, with forbidden_error_message on refusal", async () => {
    expect((await call("/realm", "billing")).status).toBe(200);
    const refused = await call("/realm", "shipping");
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ message: "Invoices are for readers" });
  });

  it("reads resource_access.<client>.roles", async () => {
    expect((await call("/client-roles", "billing")).status).toBe(200);
    expect((await call("/client-roles", "shipping")).status).toBe(403);
    expect((await call("/client-roles", "plain")).status).toBe(403);
  });

  it("accepts one role as a string (not coerced from another type)", async () => {
    expect((await call("/realm", "odd")).status).toBe(200);
  });

  it("applies to bearer tokens with a Bearer challenge", async () => {
    const reader = (await idp.token("billing", SECRETS.billing)).access_token;
    const other = (await idp.token("shipping", SECRETS.shipping)).access_token;
    expect((await fetch(`${gw.proxyUrl}/bearer-roles`, { headers: { authorization: `Bearer ${reader}` } })).status).toBe(200);
    const refused = await fetch(`${gw.proxyUrl}/bearer-roles`, { headers: { authorization: `Bearer ${other}` } });
    expect(refused.status).toBe(403);
    expect(refused.headers.get("www-authenticate")).toStartWith("Bearer ");
    expect(refused.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
  });
});

describe("claims_forbidden", () => {
  it("refuses a token carrying a forbidden claim and lets the others in", async () => {
    expect((await call("/no-act", "odd")).status).toBe(403);
    expect((await call("/no-act", "billing")).status).toBe(200);
  });
});

describe("authenticated_groups_claim", () => {
  it("sends the token's groups upstream in X-Authenticated-Groups, replacing the caller's copy", async () => {
    for (let i = 0; i < 2; i++) {
      const res = await call("/auth-groups", "billing", { "x-authenticated-groups": "admins" });
      expect(res.upstream!.headers["x-authenticated-groups"]).toBe("invoice-reader, offline_access");
    }
  });

  it("sends none when the claim is absent, and drops the caller's forged header", async () => {
    const res = await call("/auth-groups", "plain", { "x-authenticated-groups": "admins" });
    expect(res.status).toBe(200);
    expect(res.upstream!.headers["x-authenticated-groups"]).toBeUndefined();
  });
});

describe("the access log", () => {
  it("names the caller by client_id and sub, never with its token", async () => {
    const res = await call("/groups", "billing");
    const line = await gw.waitForLog((l) => l.event === "http.request" && l.request_id === res.requestId);
    expect(line.client_id).toBe("billing");
    expect(typeof line.sub).toBe("string");
    expect(JSON.stringify(line)).not.toContain("eyJ");
  });
});

const FORGED = {
  "x-consumer-id": "forged",
  "x-consumer-username": "admin",
  "x-consumer-custom-id": "admin",
  "x-credential-identifier": "forged",
  "x-anonymous-consumer": "false",
  "x-consumer-groups": "admins",
};

describe("consumers mapped by consumer_claim", () => {
  it("map a client to its consumer by custom_id and tell the upstream who it is, never what the caller claimed", async () => {
    for (let i = 0; i < 2; i++) {
      const res = await call("/mapped", "billing", FORGED);
      expect(res.status).toBe(200);
      const h = res.upstream!.headers;
      expect(h["x-consumer-username"]).toBe("billing-app");
      expect(h["x-consumer-custom-id"]).toBe("billing");
      expect(h["x-consumer-id"]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(h["x-credential-identifier"]).toBe("billing"); // the `sub` of a client's own token
      expect(h["x-anonymous-consumer"]).toBeUndefined();
      expect(h["x-consumer-groups"]).toBeUndefined();
    }
  });

  it("map by username when no custom_id matches", async () => {
    const other = await call("/mapped-optional", "shipping");
    expect(other.upstream!.headers["x-consumer-username"]).toBe("shipping");
    expect(other.upstream!.headers["x-consumer-custom-id"]).toBeUndefined();
  });

  it("refuse a valid token that maps to no consumer with 403, unless consumer_optional", async () => {
    const refused = await call("/mapped", "plain");
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({ message: "Forbidden" });
    const optional = await call("/mapped-optional", "plain", FORGED);
    expect(optional.status).toBe(200);
    expect(optional.upstream!.headers["x-consumer-id"]).toBeUndefined();
    expect(optional.upstream!.headers["x-consumer-username"]).toBeUndefined();
    expect(optional.upstream!.headers["x-credential-identifier"]).toBe("plain");
  });

  it("run a plugin scoped to a consumer only for that consumer (consumer + route beats route)", async () => {
    const shipping = await call("/mapped", "shipping");
    expect(shipping.status).toBe(418);
    expect(shipping.body).toEqual({ message: "shipping is closed" });
    expect((await call("/mapped", "billing")).status).toBe(200);
  });

  it("name the consumer in the access log", async () => {
    const res = await call("/mapped", "billing");
    const line = await gw.waitForLog((l) => l.event === "http.request" && l.request_id === res.requestId);
    expect(line).toMatchObject({ client_id: "billing", consumer: "billing-app", status: 200 });
  });
});

describe("anonymous", () => {
  it("lets a caller without credentials through as the anonymous consumer", async () => {
    const res = await call("/anon", undefined, FORGED);
    expect(res.status).toBe(200);
    const h = res.upstream!.headers;
    expect(h["x-anonymous-consumer"]).toBe("true");
    expect(h["x-consumer-username"]).toBe("guest");
    expect(h["x-credential-identifier"]).toBeUndefined();
  });

  it("lets a caller with refused credentials through as the anonymous consumer too", async () => {
    const res = await call("/anon", undefined, { authorization: `Basic ${btoa("billing:wrong-secret")}` });
    expect(res.status).toBe(200);
    expect(res.upstream!.headers["x-consumer-username"]).toBe("guest");
  });

  it("maps an authenticated caller as usual", async () => {
    const res = await call("/anon", "billing");
    expect(res.upstream!.headers["x-consumer-username"]).toBe("billing-app");
    expect(res.upstream!.headers["x-anonymous-consumer"]).toBeUndefined();
  });
});

describe("the acl plugin", () => {
  it("lets in a consumer of an allowed group and sends its groups in X-Consumer-Groups", async () => {
    const res = await call("/acl-allow", "billing", FORGED);
    expect(res.status).toBe(200);
    expect(res.upstream!.headers["x-consumer-groups"]).toBe("payers");
  });

  it("refuses a consumer of no allowed group with Kong's 403 body", async () => {
    const res = await call("/acl-allow", "shipping");
    expect(res.status).toBe(403);
    expect(res.body).toEqual({ message: "You cannot consume this service" });
  });

  it("refuses a consumer of a denied group and lets the others in", async () => {
    expect((await call("/acl-deny", "shipping")).status).toBe(403);
    expect((await call("/acl-deny", "billing")).status).toBe(200);
  });

  it("matches the token's groups when the caller has no consumer", async () => {
    const res = await call("/acl-token-groups", "billing");
    expect(res.status).toBe(200);
    expect(res.upstream!.headers["x-authenticated-groups"]).toBe("finance, staff");
    expect((await call("/acl-token-groups", "shipping")).status).toBe(403);
    expect((await call("/acl-token-groups", "plain")).status).toBe(403);
  });

  it("matches the anonymous consumer's groups", async () => {
    expect((await call("/acl-anon", undefined)).status).toBe(403);
    expect((await call("/acl-anon", "billing")).status).toBe(200);
  });
});
