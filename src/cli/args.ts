/** Command-line parsing: small enough not to need a library. */

type Command = "serve" | "check" | "schema" | "version" | "help";

export interface CliArgs {
  readonly command: Command;
  readonly config: string;
}

export class UsageError extends Error {}

export const USAGE = `oidc-gateway: an API gateway that puts OAuth 2.0 / OpenID Connect in front of HTTP services

Usage:
  oidc-gateway [serve] [--config|-c PATH]   start the gateway (default config: ./gateway.toml)
  oidc-gateway check [--config|-c PATH]     validate the config and exit
  oidc-gateway schema                       print the JSON Schema of gateway.toml
  oidc-gateway --version                    print the version
  oidc-gateway --help                       print this help

Exit codes:
  0  success (check: the config is valid)
  1  the config is invalid or cannot be read (the message names the file and key)
  2  wrong command-line usage
  3  the gateway could not start (e.g. a port is in use, a key file is unreadable)
`;

export function parseArgs(argv: readonly string[]): CliArgs {
  let command: Command = "serve";
  let config = "gateway.toml";
  let sawCommand = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--help" || arg === "-h") return { command: "help", config };
    if (arg === "--version" || arg === "-V") return { command: "version", config };
    if (arg === "--config" || arg === "-c") {
      const value = argv[++i];
      if (!value) throw new UsageError(`'${arg}' needs a path`);
      config = value;
    } else if (arg.startsWith("--config=")) {
      config = arg.slice("--config=".length);
    } else if (!arg.startsWith("-") && !sawCommand && ["serve", "check", "schema"].includes(arg)) {
      command = arg as Command;
      sawCommand = true;
    } else {
      throw new UsageError(`unknown argument '${arg}'`);
    }
  }
  return { command, config };
}
