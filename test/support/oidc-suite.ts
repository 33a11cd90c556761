/**
 * The processes most plugin suites share for a whole test file: the echo upstream, the test IdP,
 * and the gateways the tests start. After the file everything stops, then every gateway's log is
 * checked for the strings the suite names (its secrets, its tokens: none may ever be logged).
 *
 *   const { idp, upstream, gateways } = oidcSuite({ neverLogged: () => [SERVICE_SECRET] });
 */
import { afterAll, beforeAll, expect } from "bun:test";
import type { GatewayProcess } from "./gateway-process.ts";
import { live } from "./live.ts";
import { startIdpProcess, type IdpProcess, type IdpProcessOptions } from "./idp-process.ts";
import { startEchoUpstream, type EchoUpstream } from "./upstream.ts";

export interface OidcSuite {
  /** The test IdP; usable from the file's first `beforeAll` on. */
  readonly idp: IdpProcess;
  readonly upstream: EchoUpstream;
  /** Push every gateway the suite starts: its log is checked and it is stopped after the file. */
  readonly gateways: GatewayProcess[];
}

export interface OidcSuiteOptions {
  /** How to start the IdP (its extra clients, TLS, ...). */
  readonly idp?: IdpProcessOptions;
  /** What no gateway's log may contain, asked for after the tests ran. */
  readonly neverLogged: () => Iterable<string>;
}

export function oidcSuite(options: OidcSuiteOptions): OidcSuite {
  let idp: IdpProcess | undefined;
  let upstream: EchoUpstream | undefined;
  const gateways: GatewayProcess[] = [];
  beforeAll(async () => {
    upstream = startEchoUpstream();
    idp = await startIdpProcess(options.idp);
  }, 30_000);
  afterAll(async () => {
    // Everything stops first, so a finding below leaves no process behind.
    try {
      await Promise.all(gateways.map((gw) => gw.stop()));
    } finally {
      await idp?.stop();
      await upstream?.stop();
    }
    const neverLogged = [...options.neverLogged()];
    for (const gw of gateways) {
      const log = gw.output.join("\n");
      for (const text of neverLogged) expect(log).not.toContain(text);
    }
  });
  return { idp: live("the IdP", () => idp), upstream: live("the echo upstream", () => upstream), gateways };
}

/**
 * The `echo` service and, per entry of `settings`, a route `/<name>` with an openid-connect plugin
 * of `issuer` and that entry's settings: the TOML of suites that try plugin settings side by side.
 */
export function routePerSetting(upstreamUrl: string, issuer: string, settings: Readonly<Record<string, string>>): string {
  const routes = Object.keys(settings)
    .map((name) => `[[routes]]\nname = "${name}"\nservice = "echo"\npaths = ["/${name}"]\n`)
    .join("\n");
  const plugins = Object.entries(settings)
    .map(([name, extra]) => `[[plugins]]\nname = "openid-connect"\nroute = "${name}"\n[plugins.config]\nissuer = "${issuer}"\n${extra}\n`)
    .join("\n");
  return `[[services]]
name = "echo"
url = "${upstreamUrl}/anything"
read_timeout = 5000

${routes}
${plugins}`;
}
