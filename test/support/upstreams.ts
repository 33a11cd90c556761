/**
 * gateway.toml pieces for the suites of `[[upstreams]]` and services towards them
 * (load-balancing, upstream-tls): an upstream with its targets, a service with its one route.
 */

/** A target: `host:port`, or with its weight. */
export type TargetSpec = string | { readonly target: string; readonly weight: number };

/**
 * `[[upstreams]]` `name` with `settings` (keys and sub-tables such as `[upstreams.healthchecks.active]`,
 * which TOML wants before the targets), then one `[[upstreams.targets]]` per target.
 */
export function upstreamToml(name: string, targets: readonly TargetSpec[], settings = ""): string {
  const entries = targets.map((t) =>
    typeof t === "string" ? `[[upstreams.targets]]\ntarget = "${t}"\n` : `[[upstreams.targets]]\ntarget = "${t.target}"\nweight = ${t.weight}\n`,
  );
  return `\n[[upstreams]]\nname = "${name}"\n${settings ? `${settings.trim()}\n` : ""}${entries.join("")}`;
}

/** `[[services]]` `name` with `settings` (its `url`, timeouts, TLS), and the route `name` on `/<name>`. */
export function serviceToml(name: string, settings: string): string {
  return `\n[[services]]\nname = "${name}"\n${settings.trim()}\n\n[[routes]]\nname = "${name}"\nservice = "${name}"\npaths = ["/${name}"]\n`;
}
