import { describe, expect, it } from "bun:test";
import { pluginsForRoute } from "../../../src/gateway/plugin-chain.ts";
import type { CompiledRoute } from "../../../src/gateway/router/router.ts";
import { createConsumerDirectory } from "../../../src/plugins/consumers.ts";
import { errorOf, MINIMAL_CONFIG, parseToml } from "../../support/config.ts";

const base = `${MINIMAL_CONFIG}
[[consumers]]
username = "billing"
custom_id = "client-billing"
groups = ["payers"]

[[consumers]]
custom_id = "shipping"
`;
const OIDC = `[[plugins]]\nname = "openid-connect"\n[plugins.config]\nissuer = "http://localhost:8080/realms/master"\n`;

describe("[[consumers]] in gateway.toml", () => {
  it("accepts consumers named by username or custom_id, with tags and groups", () => {
    const config = parseToml(base);
    expect(config.consumers).toEqual([
      { username: "billing", custom_id: "client-billing", tags: [], groups: ["payers"] },
      { custom_id: "shipping", tags: [], groups: [] },
    ]);
  });

  it("refuses a consumer without username and custom_id, and a name used twice", () => {
    expect(errorOf(`${base}\n[[consumers]]\ntags = ["x"]\n`)).toContain("consumers[2]: expected 'username' or 'custom_id'");
    expect(errorOf(`${base}\n[[consumers]]\nusername = "billing"\n`)).toContain(
      'consumers[2].username: expected a unique username, "billing" is used twice',
    );
    expect(errorOf(`${base}\n[[consumers]]\nusername = "x"\ncustom_id = "shipping"\n`)).toContain("consumers[2].custom_id");
  });

  it("refuses a plugin scoped to a consumer that does not exist, naming the key", () => {
    const message = errorOf(`${base}\n[[plugins]]\nname = "request-termination"\nconsumer = "biling"\n`);
    expect(message).toContain("plugins[0].consumer: expected the name of a consumer");
    expect(message).toContain('did you mean "billing"');
  });

  it("refuses openid-connect and acl scoped to a consumer, as Kong does", () => {
    expect(errorOf(`${base}\n${OIDC.replace('name = "openid-connect"', 'name = "openid-connect"\nconsumer = "billing"')}`)).toContain(
      'plugins[0].consumer: plugin "openid-connect" cannot be scoped to a consumer',
    );
    expect(errorOf(`${base}\n[[plugins]]\nname = "acl"\nconsumer = "billing"\n[plugins.config]\nallow = ["a"]\n`)).toContain(
      'plugin "acl" cannot be scoped to a consumer',
    );
  });

  it("refuses an anonymous consumer that does not exist", () => {
    expect(errorOf(`${base}\n${OIDC}anonymous = "nobody"\n`)).toContain(
      'plugins[0].config.anonymous: expected the name of a consumer, no consumer has the username or custom_id "nobody"',
    );
    expect(parseToml(`${base}\n${OIDC}anonymous = "shipping"\n`).plugins[0]!.consumer).toBeUndefined();
  });

  it("refuses an acl with both allow and deny, or neither", () => {
    expect(errorOf(`${base}\n[[plugins]]\nname = "acl"\n[plugins.config]\nallow = ["a"]\ndeny = ["b"]\n`)).toContain(
      "plugins[0].config.deny: expected either 'allow' or 'deny', not both",
    );
    expect(errorOf(`${base}\n[[plugins]]\nname = "acl"\n[plugins.config]\nhide_groups_header = true\n`)).toContain(
      "plugins[0].config.allow: missing required key: one of 'allow' or 'deny'",
    );
  });

  it("allows one plugin per route and consumer, not twice", () => {
    const twice = `${base}\n[[plugins]]\nname = "request-termination"\nconsumer = "billing"\n[[plugins]]\nname = "request-termination"\nconsumer = "billing"\n`;
    expect(errorOf(twice)).toContain('plugins[1]: plugin "request-termination" is configured twice');
    expect(
      parseToml(`${base}\n[[plugins]]\nname = "request-termination"\n[[plugins]]\nname = "request-termination"\nconsumer = "billing"\n`).plugins,
    ).toHaveLength(2);
  });
});

describe("the consumer directory", () => {
  it("finds consumers by the consumer_by fields in order and gives each a stable UUID", async () => {
    const config = parseToml(base);
    const a = await createConsumerDirectory(config.consumers);
    const b = await createConsumerDirectory(config.consumers);
    const billing = a.find("client-billing", ["username", "custom_id"])!;
    expect(billing.username).toBe("billing");
    expect(billing.id).toBe(b.named("billing")!.id);
    expect(billing.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a.find("client-billing", ["username"])).toBeUndefined();
    expect(a.find(billing.id, ["id"])).toBe(billing);
    expect(a.named("shipping")!.name).toBe("shipping");
    expect(a.named("nobody")).toBeUndefined();
  });
});

describe("Kong's precedence with consumers", () => {
  const config = parseToml(`${base}
[[routes]]
name = "other"
service = "svc"
paths = ["/other"]
${["", 'consumer = "billing"', 'route = "r"', 'route = "r"\nconsumer = "billing"', 'service = "svc"\nconsumer = "billing"', 'service = "svc"']
  .map((scope, i) => `[[plugins]]\nname = "request-termination"\n${scope}\n[plugins.config]\nmessage = "${i}"\n`)
  .join("\n")}`);
  const route = (name: string): CompiledRoute => {
    const r = config.routes.find((x) => x.name === name)!;
    return { config: r, service: config.services[0]!, index: 0 };
  };
  const active = config.plugins.map((entry) => ({ entry, priority: 2, instance: { handler: async () => {} } }));
  const chosen = async (name: string, consumer?: string) => {
    const consumers = await createConsumerDirectory(config.consumers);
    return pluginsForRoute(route(name), active, consumer ? consumers.named(consumer) : undefined, consumers).map(
      (p) => (p.entry.config as { message: string }).message,
    );
  };

  it("consumer + route beats route, and route beats consumer + service", async () => {
    expect(await chosen("r", "billing")).toEqual(["3"]);
    expect(await chosen("r", "shipping")).toEqual(["2"]);
    expect(await chosen("r")).toEqual(["2"]);
  });

  it("consumer + service beats service, and a consumer's entry never applies to another caller", async () => {
    expect(await chosen("other", "billing")).toEqual(["4"]);
    expect(await chosen("other", "shipping")).toEqual(["5"]);
    expect(await chosen("other")).toEqual(["5"]);
  });
});

describe("the README's billing example", () => {
  it("is a valid gateway.toml: one consumer, its acl group and 100 requests a minute", async () => {
    const readme = await Bun.file(new URL("../../../README.md", import.meta.url)).text();
    const block = [...readme.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1]!).find((t) => t.includes('paths = ["/invoices"]'));
    expect(block).toBeDefined();
    const config = parseToml(block!);
    expect(config.consumers[0]).toMatchObject({ custom_id: "billing", groups: ["invoices"] });
    expect(config.plugins.map((p) => p.name)).toEqual(["openid-connect", "acl", "rate-limiting"]);
    expect(config.plugins[2]!.config).toMatchObject({ minute: 100, limit_by: "consumer" });
  });
});
