/** Read gateway.toml, validate it once, and say exactly what is wrong when it is not right. */
import { parse as parseToml, TomlError } from "smol-toml";
import type { z } from "zod";
import { ConfigError } from "../errors.ts";
import type { Runtime } from "../runtime/types.ts";
import { configSchema, type GatewayConfig, type PluginSchemas } from "./schema.ts";
import { resolveVaultReferences, type VaultReference } from "./vault.ts";

export interface LoadedConfig {
  readonly file: string;
  readonly config: GatewayConfig;
  /** The values that came from `{vault://…}` references (the admin API shows the reference). */
  readonly references: readonly VaultReference[];
}

/** `routes[1].paths[0]` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

function issueLine(issue: z.core.$ZodIssue): string {
  let path = issue.path;
  let message = issue.message;
  if (issue.code === "unrecognized_keys" && issue.keys.length === 1) {
    path = [...path, issue.keys[0]!];
    message = message.replace(/^unknown key "[^"]*"/, "unknown key");
  } else if ("input" in issue && issue.input === undefined && issue.code !== "custom") {
    message = issue.code === "invalid_type" ? `missing required key, expected ${issue.expected}` : "missing required key";
  }
  const where = formatPath(path);
  return `  ${where || "(top level)"}: ${lowerFirst(message)}`;
}

/** One issue per unknown key, so each line names its key. */
function perKey(issue: z.core.$ZodIssue): z.core.$ZodIssue[] {
  if (issue.code !== "unrecognized_keys" || issue.keys.length < 2) return [issue];
  const messages = issue.message.split("; ");
  return issue.keys.map((key, i) => ({ ...issue, keys: [key], message: messages[i] ?? issue.message }));
}

function formatIssues(file: string, reported: readonly z.core.$ZodIssue[]): string {
  const issues = reported.flatMap(perKey);
  const lines = issues.slice(0, 20).map(issueLine);
  if (issues.length > 20) lines.push(`  … and ${issues.length - 20} more`);
  return `${file}: invalid configuration\n${lines.join("\n")}`;
}

function dirname(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : path.slice(0, i);
}

function resolveAgainst(base: string, path: string): string {
  return path.startsWith("/") ? path : `${base}/${path}`.replace(/\/\.\//g, "/");
}

// Digits that could be a TOML date or time: the runtime's parser would make a string of them.
const DATETIME = /\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}/;

function parseTomlText(text: string, file: string, native?: (text: string) => unknown): unknown {
  if (native && !DATETIME.test(text)) {
    try {
      return native(text);
    } catch {
      // smol-toml says where and what (below).
    }
  }
  try {
    return parseToml(text);
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    const found = text.split("\n")[error.line - 1]?.[error.column - 1];
    const what = error.message.split("\n")[0]!.replace(/^Invalid TOML document: /, "");
    throw new ConfigError(
      `${file}:${error.line}:${error.column}: TOML syntax error: ${found === undefined ? "unexpected end of input" : `unexpected ${JSON.stringify(found)}`}: ${what}`,
    );
  }
}

// Building the schema costs more than validating a small file with it: one per folder and
// plugin set, kept for reloads.
const schemas = new WeakMap<PluginSchemas, Map<string, ReturnType<typeof configSchema>>>();

function schemaFor(base: string, plugins: PluginSchemas): ReturnType<typeof configSchema> {
  let byBase = schemas.get(plugins);
  if (!byBase) schemas.set(plugins, (byBase = new Map()));
  let schema = byBase.get(base);
  if (!schema) byBase.set(base, (schema = configSchema({ resolvePath: (p) => resolveAgainst(base, p) }, plugins, true)));
  return schema;
}

function validate(raw: unknown, file: string, plugins: PluginSchemas): GatewayConfig {
  // jitless (here and in the schema's own safeParse calls): zod generates and compiles a parser
  // per object schema on its first parse, which costs more than the one parse of a config saves.
  const result = schemaFor(dirname(file), plugins).safeParse(raw, { reportInput: true, jitless: true });
  if (!result.success) throw new ConfigError(formatIssues(file, result.error.issues));
  return deepFreeze(result.data);
}

/** Parse and validate TOML text (vault references are not resolved); `file` names the source in every message. */
export function parseConfig(text: string, file: string, plugins: PluginSchemas): GatewayConfig {
  return validate(parseTomlText(text, file), file, plugins);
}

export async function loadConfig(runtime: Runtime, file: string, plugins: PluginSchemas): Promise<LoadedConfig> {
  let text: string;
  try {
    text = await runtime.readTextFile(file);
  } catch (error) {
    throw new ConfigError(`${file}: cannot read the configuration file (${(error as Error).message})`);
  }
  const base = dirname(file);
  const raw = parseTomlText(text, file, runtime.parseToml);
  // A reference needs "vault" in the text, or an escape that can spell it (`\u`, `\x`, a line-
  // ending backslash): a file with neither has none, and 10 000 routes need not be walked for one.
  const resolved =
    !text.includes("vault") && !/\\(?:[uUx]|[ \t]*\r?\n)/.test(text)
      ? { value: raw, references: [], errors: [] }
      : await resolveVaultReferences(raw, {
          env: (name) => runtime.env(name),
          readTextFile: (path) => runtime.readTextFile(path),
          resolvePath: (p) => resolveAgainst(base, p),
        });
  if (resolved.errors.length) {
    throw new ConfigError(`${file}: invalid configuration\n${resolved.errors.map((e) => `  ${formatPath(e.path)}: ${e.message}`).join("\n")}`);
  }
  return { file, config: validate(resolved.value, file, plugins), references: resolved.references };
}

/**
 * Config is frozen at start: nothing may change it behind the validator's back. Tables are;
 * lists are not: JSC turns a frozen array into a sparse one (the 11 000 routes' list: ~90 ms and
 * a slower `routes[i]`); nothing writes them, and the router and app copy what they read.
 * What is frozen already (the routes of routes-fast.ts) is not walked again.
 */
function deepFreeze<T>(value: T): T {
  if (Array.isArray(value)) for (const v of value) deepFreeze(v);
  else if (value && typeof value === "object" && !(value instanceof URL) && !Object.isFrozen(value)) {
    for (const key in value) deepFreeze(value[key]);
    Object.freeze(value);
  }
  return value;
}
