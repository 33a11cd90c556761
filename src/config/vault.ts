/**
 * Kong's vault references, so secrets need not sit in gateway.toml: any string value that is
 * exactly `{vault://env/NAME}` or `{vault://file/PATH}` is replaced by the secret before the
 * schema sees it, at start, on every reload and in `check`. A reference that does not resolve
 * is a config error naming the key and the reference, never a value.
 */

/** Where a value sits in the config: `["plugins", 0, "config", "client_secret"]`. */
export type ConfigPath = readonly (string | number)[];

const REFERENCE = /^\{vault:\/\/([a-z][a-z0-9-]*)\/([^{}]+)\}$/;

/** Where references are resolved from: the process environment and files. */
export interface VaultSources {
  env(name: string): string | undefined;
  readTextFile(path: string): Promise<string>;
  /** Resolves a path written in the file against the file's folder. */
  resolvePath(path: string): string;
}

/** A value that came from a vault: where it sits in the config, and the reference written there. */
export interface VaultReference {
  readonly path: ConfigPath;
  readonly reference: string;
}

export class VaultError extends Error {
  constructor(
    readonly path: ConfigPath,
    message: string,
  ) {
    super(message);
  }
}

/** Kong's env vault: `{vault://env/my-secret}` reads `MY_SECRET`; `/key` picks a field of a JSON value. */
export function envVariableName(name: string): string {
  return name.toUpperCase().replace(/-/g, "_");
}

async function resolveOne(reference: string, path: ConfigPath, sources: VaultSources): Promise<string> {
  const [, vault, rest] = REFERENCE.exec(reference)!;
  if (vault === "env") {
    const [name, ...keyParts] = rest!.split("/");
    const variable = envVariableName(name!);
    const value = sources.env(variable);
    if (value === undefined)
      throw new VaultError(path, `the vault reference ${reference} does not resolve: the environment variable ${variable} is not set`);
    if (!keyParts.length) return value;
    const key = keyParts.join("/");
    let json: unknown;
    try {
      json = JSON.parse(value);
    } catch {
      throw new VaultError(path, `the vault reference ${reference} does not resolve: ${variable} is not a JSON object`);
    }
    const field = json && typeof json === "object" ? (json as Record<string, unknown>)[key] : undefined;
    if (typeof field !== "string")
      throw new VaultError(path, `the vault reference ${reference} does not resolve: ${variable} has no string field "${key}"`);
    return field;
  }
  if (vault === "file") {
    const file = sources.resolvePath(rest!);
    try {
      // A mounted secret often ends with one newline that is not part of the secret.
      return (await sources.readTextFile(file)).replace(/\r?\n$/, "");
    } catch (error) {
      throw new VaultError(
        path,
        `the vault reference ${reference} does not resolve: cannot read "${file}" (${(error as { code?: string }).code ?? "unreadable"})`,
      );
    }
  }
  throw new VaultError(path, `the vault reference ${reference} names an unknown vault "${vault}"; expected "env" or "file"`);
}

function hasReference(value: unknown): boolean {
  if (typeof value === "string") return REFERENCE.test(value);
  if (Array.isArray(value)) return value.some(hasReference);
  if (value && typeof value === "object") {
    for (const k in value) if (hasReference((value as Record<string, unknown>)[k])) return true;
  }
  return false;
}

/**
 * A copy of the parsed TOML with every reference replaced, and where each one was. Every
 * reference is tried, so one error lists all that do not resolve.
 */
export async function resolveVaultReferences(
  raw: unknown,
  sources: VaultSources,
): Promise<{ value: unknown; references: VaultReference[]; errors: VaultError[] }> {
  const references: VaultReference[] = [];
  const errors: VaultError[] = [];
  const walk = async (value: unknown, path: ConfigPath): Promise<unknown> => {
    // Subtrees without a reference stay as they are: a file of 10 000 routes has none to copy.
    if (typeof value === "object" && !hasReference(value)) return value;
    if (typeof value === "string") {
      if (!REFERENCE.test(value)) return value;
      try {
        const resolved = await resolveOne(value, path, sources);
        references.push({ path, reference: value });
        return resolved;
      } catch (error) {
        if (!(error instanceof VaultError)) throw error;
        errors.push(error);
        return value;
      }
    }
    if (Array.isArray(value)) return Promise.all(value.map((v, i) => walk(v, [...path, i])));
    if (value && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) out[k] = await walk(v, [...path, k]);
      return out;
    }
    return value;
  };
  const value = await walk(raw, []);
  return { value, references, errors };
}

/** Puts the references back where they were, over a (redacted) copy shown by the admin API. */
export function showReferences(shown: unknown, prefix: ConfigPath, references: readonly VaultReference[]): unknown {
  for (const { path, reference } of references) {
    if (path.length <= prefix.length || !prefix.every((p, i) => path[i] === p)) continue;
    let node = shown as Record<string | number, unknown> | undefined;
    const rest = path.slice(prefix.length);
    for (let i = 0; i < rest.length - 1 && node && typeof node === "object"; i++)
      node = node[rest[i]!] as Record<string | number, unknown> | undefined;
    if (node && typeof node === "object" && rest[rest.length - 1]! in node) node[rest[rest.length - 1]!] = reference;
  }
  return shown;
}
