/**
 * The import graph's rules (docs/architecture.md): no circle, type-only imports included, and
 * layers that point one way. `make lint` runs it. swc parses (TypeScript 7 has no JS API).
 */
const above = (...dirs) => ({ path: `^src/(${dirs.join("|")})(/|\\.ts$)` });

module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", comment: "An import circle ties its files into one unit; break it by injecting or moving code down.", from: {}, to: { circular: true } },
    {
      name: "runtime-apis-in-runtime",
      severity: "error",
      comment: "Node's modules (node:tls, node:fs, ...) are runtime specifics: only src/runtime/ imports them.",
      from: { path: "^src/", pathNot: "^src/runtime/" },
      to: { dependencyTypes: ["core"] },
    },
    {
      name: "runtime-lib-at-the-bottom",
      severity: "error",
      comment: "runtime/ and lib/ are the ground floor: they import nothing of the gateway's above them.",
      from: { path: "^src/(runtime|lib)/" },
      to: { path: "^src/", pathNot: "^src/(runtime|lib)/" },
    },
    {
      name: "config-below-protocols",
      severity: "error",
      comment: "config/ is read by everything above it; the plugin registry is injected, never imported.",
      from: { path: "^src/config/" },
      to: above("plugins", "gateway", "oidc", "admin", "cli", "main"),
    },
    {
      name: "protocols-below-plugins",
      severity: "error",
      comment: "oidc/, keys/ and cluster/ serve the plugins and the pipeline with narrow contexts.",
      from: { path: "^src/(oidc|keys|cluster|upstream)/" },
      to: above("plugins", "gateway", "admin", "cli", "main"),
    },
    {
      name: "plugins-below-pipeline",
      severity: "error",
      comment: "A plugin sees the plugin API (plugins/types.ts), never the pipeline that runs it.",
      from: { path: "^src/plugins/" },
      // gateway/context.ts is the request context the plugin API is written against (issue 12 redoes it).
      to: { ...above("gateway", "admin", "cli", "main"), pathNot: "^src/gateway/context\\.ts$" },
    },
  ],
  options: {
    parser: "swc",
    tsPreCompilationDeps: true,
    doNotFollow: { path: "node_modules" },
    exclude: { path: "node_modules" },
  },
};
