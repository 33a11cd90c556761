/**
 * The fast path of `[[routes]]` validation against the schema: for random entries, valid and
 * not, the fast path either steps aside or gives exactly the schema's value, frozen.
 */
import { describe, expect, it } from "bun:test";
import { fastRoute } from "../../../src/config/routes-fast.ts";
import { routeSchema } from "../../../src/config/routes.ts";
import { generateRoutes, routesToml } from "../../../bench/lib/generated-routes.ts";
import { parse } from "smol-toml";
import { configSchema } from "../../../src/config/schema.ts";
import { pluginRegistry } from "../../../src/plugins/registry.ts";

/** A small deterministic generator, so a failure can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const CHOICES: Record<string, unknown[]> = {
  name: ["r1", "tenant-2", "bad name", "", 7, "x".repeat(129)],
  service: ["svc", "s.v_c~1", "no/slash", undefined],
  paths: [undefined, [], ["/"], ["/a", "~/b/\\d+$"], ["api"], ["~("], ["/x", 3], "/", ["~/t1/items/\\d+$"]],
  hosts: [undefined, [], ["a.example.com"], ["*.example.com", "example.*:8443"], ["bad host!"], [""]],
  methods: [undefined, [], ["GET"], ["GET", "POST"], ["get"], [1]],
  protocols: [undefined, ["http"], ["https", "wss"], [], ["grpc"], "http"],
  https_redirect_status_code: [undefined, 426, 301, 308, 303, "426"],
  strip_path: [undefined, true, false, "yes"],
  preserve_host: [undefined, false, true, 0],
  path_handling: [undefined, "v0", "v1", "v2"],
  regex_priority: [undefined, 0, 3, -2, 1.5, 2 ** 60, "1"],
  headers: [undefined, undefined, undefined, { "x-a": ["1"] }],
  snis: [undefined, undefined, undefined, ["a.example"]],
  strip_paths: [undefined, undefined, undefined, false],
};

function randomRoute(random: () => number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, values] of Object.entries(CHOICES)) {
    // Mostly valid values, so both sides often accept.
    const v = random() < 0.8 ? values[Math.floor(random() * Math.min(3, values.length))] : values[Math.floor(random() * values.length)];
    if (v !== undefined) out[key] = structuredClone(v);
  }
  return out;
}

describe("the routes fast path", () => {
  it("gives the schema's value (same keys, same order) or steps aside, for 3 000 random entries", () => {
    const schema = routeSchema();
    const random = rng(19);
    let fast = 0;
    for (let i = 0; i < 3000; i++) {
      const raw = randomRoute(random);
      const expected = schema.safeParse(structuredClone(raw));
      const got = fastRoute(raw);
      if (got === undefined) continue;
      fast++;
      expect({ raw, success: expected.success }).toEqual({ raw, success: true });
      expect(JSON.stringify(got)).toBe(JSON.stringify(expected.data));
      expect(Object.isFrozen(got)).toBe(true);
    }
    expect(fast).toBeGreaterThan(300);
  });

  it("takes every route of the generated 11 000-route benchmark file", () => {
    for (const r of generateRoutes(11_000, 1 / 11)) {
      const raw: Record<string, unknown> = { name: r.name, service: "up", paths: [...r.paths] };
      if (r.hosts.length) raw.hosts = [...r.hosts];
      if (r.methods.length) raw.methods = [...r.methods];
      if (r.regex_priority) raw.regex_priority = r.regex_priority;
      expect(fastRoute(raw)).toBeDefined();
    }
    // As the TOML parser makes them: tables without a prototype.
    expect(fastRoute(Object.assign(Object.create(null), { name: "r", service: "s", paths: ["/"] }))).toBeDefined();
  });

  it("leaves headers, snis, sources, destinations and unknown keys to the schema", () => {
    for (const extra of [
      { headers: { "x-a": ["1"] } },
      { snis: ["a.example"] },
      { sources: [{ port: 1 }] },
      { destinations: [] },
      { strip_paths: true },
    ])
      expect(fastRoute({ name: "r", service: "s", paths: ["/"], ...extra })).toBeUndefined();
  });
});

describe("the routes as loading validates them", () => {
  const ctx = { resolvePath: (p: string) => p };
  const loading = configSchema(ctx, pluginRegistry, true);
  const plain = configSchema(ctx, pluginRegistry);
  const both = (text: string) => [loading, plain].map((schema) => schema.safeParse(parse(text), { reportInput: true }));

  it("give the plain schema's config for 1 100 generated routes, and for one route of another shape among them", () => {
    const text = routesToml(generateRoutes(1_100, 1 / 11), "http://127.0.0.1:9000");
    for (const t of [text, `${text}\n[[routes]]\nname = "h"\nservice = "up"\nheaders = { x-a = ["1"] }\n`]) {
      const [a, b] = both(t);
      expect(a!.success && b!.success).toBe(true);
      expect(JSON.stringify(a!.data)).toBe(JSON.stringify(b!.data));
    }
  });

  it("share one method list between routes with the same methods (one file's routes keep less alive)", () => {
    const [a] = both(routesToml(generateRoutes(20), "http://127.0.0.1:9000"));
    const routes = (a!.data as { routes: { methods: string[] }[] }).routes;
    expect(routes[1]!.methods).toEqual(["GET", "POST"]);
    expect(routes[6]!.methods).toBe(routes[1]!.methods);
  });

  it("give the plain schema's issues, with the same paths", () => {
    const text = routesToml(generateRoutes(50, 1 / 11), "http://127.0.0.1:9000");
    for (const bad of ['paths = ["api"]', "strip_paths = true", 'methods = ["get"]', 'paths = ["~("]']) {
      const [a, b] = both(`${text}\n[[routes]]\nname = "bad"\nservice = "up"\n${bad}\n`);
      expect(a!.success).toBe(false);
      expect(JSON.stringify(a!.error!.issues)).toBe(JSON.stringify(b!.error!.issues));
    }
    // A top-level key, so before the first table: the services of the same file, and routes = 3.
    const [a, b] = both(`routes = 3\n${text.slice(0, text.indexOf("[[routes]]"))}`);
    expect(a!.success).toBe(false);
    expect(a!.error!.issues.map((i) => i.path)).toEqual([["routes"]]);
    expect(JSON.stringify(a!.error!.issues)).toBe(JSON.stringify(b!.error!.issues));
  });
});
