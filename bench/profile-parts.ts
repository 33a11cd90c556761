/**
 * Splits a CPU profile of the gateway (or a floor proxy) under load into the parts of the request
 * path: each sample goes to the innermost frame that a rule below recognises (a native leaf such as
 * `write` or `set` counts for the JS function that called it). With the server's CPU µs per request
 * measured in the same run, each part's share becomes µs per request.
 *
 *   bun --cpu-prof --cpu-prof-dir=/tmp/prof src/main.ts --config plain.toml &   # then wrk, then SIGINT
 *   bun bench/profile-parts.ts /tmp/prof/CPU.*.cpuprofile [cpu-µs-per-request]
 */
import { readFileSync } from "node:fs";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

type Rule = readonly [part: string, matches: (fn: string, url: string, leaf: boolean) => boolean];

const file = (url: string, pattern: RegExp) => pattern.test(url);

const RULES: readonly Rule[] = [
  ["upstream socket write (send syscall: the kernel's loopback TCP)", (fn, url, leaf) => leaf && fn === "write" && url === ""],
  ["caller address (requestIP: getpeername)", (fn) => fn === "requestIP"],
  ["new Response for the caller", (fn, url) => fn === "Response" && url === ""],
  ["listener edge (Bun.serve callback, edgeRefusal, WebSocket check)", (_f, url) => file(url, /runtime\/(bun|request-target|websocket-edge)\.ts$/)],
  [
    "upstream header hygiene (X-Forwarded-*, hop-by-hop, head lines)",
    (fn, url) =>
      url.endsWith("gateway/headers.ts") &&
      /upstream(HeadLines|RequestHeaders)|scanHeader|forwardable|connectionTokens|hostWithoutPort|normalizeHeaderName/.test(fn),
  ],
  ["request id", (_f, url) => url.endsWith("gateway/headers.ts")],
  ["request head writing (request-head.ts)", (_f, url) => url.endsWith("upstream/request-head.ts")],
  ["response head parsing (response-parser.ts)", (_f, url) => url.endsWith("upstream/response-parser.ts")],
  ["route match (router/)", (_f, url) => file(url, /gateway\/router\//)],
  ["request target split and path normalisation", (_f, url) => url.endsWith("gateway/path.ts")],
  ["metrics", (_f, url) => file(url, /src\/metrics(-series)?\.ts$/)],
  ["request context", (_f, url) => url.endsWith("gateway/request-context.ts")],
  ["caller watch", (_f, url) => url.endsWith("gateway/caller-watch.ts")],
  ["response for the caller (downstreamResponse)", (fn) => fn === "downstreamResponse"],
  [
    "upstream connection and pool (connection.ts, pool.ts, bun-socket.ts, timers)",
    (_f, url) => file(url, /upstream\/(connection|pool)\.ts$|runtime\/bun-socket\.ts$/),
  ],
  ["proxy step (proxyPooled, pooledHandler, chain)", (_f, url) => file(url, /gateway\/(proxy|plugin-chain)\.ts$/)],
  ["request handler (app.ts: trusted proxies, protocol check, access log, errors)", (_f, url) => file(url, /gateway\/(app|start)\.ts$/)],
];

const [path, perRequest] = [Bun.argv[2], Number(Bun.argv[3] ?? 0)];
if (!path) throw new Error("usage: bun bench/profile-parts.ts PROFILE.cpuprofile [cpu-µs-per-request]");
const profile = JSON.parse(readFileSync(path, "utf8")) as { nodes: ProfileNode[]; samples: number[] };
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

function partOf(id: number): string {
  let leaf = true;
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const { functionName, url } = nodes.get(at)!.callFrame;
    for (const [part, matches] of RULES) if (matches(functionName, url, leaf)) return part;
    leaf = false;
  }
  const { functionName, url } = nodes.get(id)!.callFrame;
  const top = parent.get(id) === undefined || nodes.get(parent.get(id)!)!.callFrame.functionName === "(root)";
  if (top && url === "") return "runtime outside JS functions (Bun.serve parse/dispatch/response write, socket reads, event loop)";
  return `other: ${functionName || "(anonymous)"} ${url.replace(/.*\//, "")}`;
}

const counts = new Map<string, number>();
for (const id of profile.samples) {
  const part = partOf(id);
  counts.set(part, (counts.get(part) ?? 0) + 1);
}
const total = profile.samples.length;
const us = (n: number) => (perRequest ? ((perRequest * n) / total).toFixed(1) : "");
console.log(`| part of the request path | share of samples | µs per request |\n|---|---:|---:|`);
let rest = 0;
for (const [part, n] of [...counts].sort((a, b) => b[1] - a[1])) {
  if (n / total < 0.005) rest += n;
  else console.log(`| ${part} | ${((100 * n) / total).toFixed(1)} % | ${us(n)} |`);
}
console.log(`| everything else (each < 0.5 %) | ${((100 * rest) / total).toFixed(1)} % | ${us(rest)} |`);
console.log(`\n${total} samples${perRequest ? `, ${perRequest} µs of CPU per request` : ""}`);
