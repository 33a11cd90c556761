/**
 * The router's own cost: nanoseconds per match (best of 5 rounds: the machine is shared) (first, middle and last route, and a miss) and
 * build time, for 1, 1 000 and 10 000 generated routes (+10 % regex), in process.
 * Run: bun bench/router.ts [--quick]
 */
import { compileRoutes } from "../test/support/routes.ts";
import { Router } from "../src/gateway/router/router.ts";
import { generateRoutes, probe } from "./lib/generated-routes.ts";

const quick = Bun.argv.includes("--quick");
const iterations = quick ? 100_000 : 1_000_000;
const sizes = [1, 1_000, 11_000];

function nsPerMatch(router: Router, req: Parameters<Router["match"]>[0]): number {
  const headers = req.headers;
  let sink = 0;
  for (let i = 0; i < 10_000; i++) sink += router.match(req) ? 1 : 0;
  const samples: number[] = [];
  for (let round = 0; round < 5; round++) {
    const start = Bun.nanoseconds();
    for (let i = 0; i < iterations / 5; i++) sink += router.match(req) ? 1 : 0;
    samples.push((Bun.nanoseconds() - start) / (iterations / 5));
  }
  if (sink < 0 || !headers) throw new Error("unreachable");
  return Math.min(...samples);
}

const headers = new Headers({ host: "gw.test", "user-agent": "wrk", accept: "*/*" });
console.log(`router match cost, best of 5 x ${iterations / 5} matches (ns/match)`);
console.log(["routes", "build ms", "first", "middle", "last", "regex", "miss"].map((h) => h.padStart(9)).join(" "));
for (const size of sizes) {
  const generated = generateRoutes(size, size > 1 ? 1 / 11 : 0);
  const specs = generated.map((g) => ({ ...g }));
  const t0 = performance.now();
  const router = new Router(compileRoutes(specs));
  const build = performance.now() - t0;
  const at = (i: number) => {
    const p = probe(generated, i);
    return { method: p.method, host: p.host, path: p.path, protocol: "http" as const, headers, localPort: 8000, remoteAddress: "127.0.0.1" };
  };
  const regexIndex = generated.findLastIndex((g) => g.paths[0]!.startsWith("~"));
  const cells = [
    String(size),
    build.toFixed(1),
    nsPerMatch(router, at(0)).toFixed(0),
    nsPerMatch(router, at(Math.floor(size / 2))).toFixed(0),
    nsPerMatch(router, at(size - 1)).toFixed(0),
    regexIndex >= 0 ? nsPerMatch(router, at(regexIndex)).toFixed(0) : "-",
    nsPerMatch(router, { ...at(0), path: "/nowhere/at/all" }).toFixed(0),
  ];
  console.log(cells.map((c) => c.padStart(9)).join(" "));
}
