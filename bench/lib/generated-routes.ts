/**
 * Generated route sets for the routing benchmarks and tests: `count` routes, one per tenant, 10 %
 * of them regex paths, every 7th with a host, every 5th with methods, all to one service.
 * Request paths that reach the first, middle and last route are given with them.
 */
export interface GeneratedRoute {
  readonly name: string;
  readonly paths: string[];
  readonly hosts: string[];
  readonly methods: string[];
  readonly regex_priority: number;
}

export interface RouteProbe {
  readonly route: string;
  readonly path: string;
  readonly host: string;
  readonly method: string;
}

export function generateRoutes(count: number, regexShare = 0.1): GeneratedRoute[] {
  const routes: GeneratedRoute[] = [];
  const regexEvery = regexShare > 0 ? Math.round(1 / regexShare) : 0;
  for (let i = 0; i < count; i++) {
    const regex = regexEvery > 0 && i % regexEvery === regexEvery - 1;
    routes.push({
      name: `t${i}`,
      paths: [regex ? `~/t${i}/items/\\d+$` : `/t${i}/api`],
      hosts: i % 7 === 3 ? [`t${i}.example.test`] : [],
      methods: i % 5 === 1 ? ["GET", "POST"] : [],
      regex_priority: regex ? i % 3 : 0,
    });
  }
  return routes;
}

/** A request that reaches `routes[i]`. */
export function probe(routes: readonly GeneratedRoute[], i: number): RouteProbe {
  const r = routes[i]!;
  const p = r.paths[0]!;
  return {
    route: r.name,
    path: p.startsWith("~") ? `/t${i}/items/42` : `${p}/v1/x`,
    host: r.hosts[0] ?? "gw.test",
    method: "GET",
  };
}

/** gateway.toml with the routes, one service at `upstream`. */
export function routesToml(routes: readonly GeneratedRoute[], upstream: string, server = "[server]\naccess_log = false\n"): string {
  const out = [server, `[[services]]\nname = "up"\nurl = "${upstream}"\n`];
  const list = (xs: readonly string[]) => `[${xs.map((x) => JSON.stringify(x)).join(", ")}]`;
  for (const r of routes) {
    let s = `[[routes]]\nname = "${r.name}"\nservice = "up"\npaths = ${list(r.paths)}\n`;
    if (r.hosts.length) s += `hosts = ${list(r.hosts)}\n`;
    if (r.methods.length) s += `methods = ${list(r.methods)}\n`;
    if (r.regex_priority) s += `regex_priority = ${r.regex_priority}\n`;
    out.push(s);
  }
  return out.join("\n");
}
