/** Reusable schema pieces. Every key is documented with `.describe()`: docs and JSON Schema come from it. */
import { z } from "zod";
import { didYouMean } from "./did-you-mean.ts";
import { KONG_KEYS, notImplementedMessage, type KongTable } from "./kong-keys.ts";

/** What a schema needs from the file it validates. */
export interface SchemaContext {
  /** Resolves a path written in the file against the file's folder. */
  resolvePath(path: string): string;
}

/** A file path, relative to the config file's folder. */
export const filePath = (ctx: SchemaContext) =>
  z
    .string()
    .min(1, "expected a file path")
    .transform((p) => ctx.resolvePath(p));

/** Milliseconds, as Kong writes timeouts. */
export const millis = (max = 24 * 3600 * 1000) => z.int("expected a whole number of milliseconds").min(0).max(max);

/** Seconds, as Kong writes lifetimes and TTLs. */
export const seconds = (max = 366 * 24 * 3600) => z.number("expected a number of seconds").min(0).max(max);

export interface ListenAddress {
  readonly hostname: string;
  readonly port: number;
}

/** `host:port`, `[v6]:port`, or `off`. */
function parseListen(value: string): ListenAddress | "off" | undefined {
  if (value === "off") return "off";
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(value);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { hostname: (m[1] ?? m[2])!, port };
}

export const listen = () =>
  z.string().transform((value, ctx) => {
    const parsed = parseListen(value);
    if (parsed === undefined || parsed === "off") {
      ctx.addIssue({ code: "custom", message: `expected "host:port" (e.g. "0.0.0.0:8000" or "[::1]:8000"), got "${value}"` });
      return z.NEVER;
    }
    return parsed;
  });

export const listenOrOff = () =>
  z.string().transform((value, ctx) => {
    const parsed = parseListen(value);
    if (parsed === undefined) {
      ctx.addIssue({ code: "custom", message: `expected "host:port" or "off", got "${value}"` });
      return z.NEVER;
    }
    return parsed;
  });

/** A forward proxy (`http_proxy`, `https_proxy`): an http:// URL, credentials allowed (never logged). */
const proxyUrl = () => z.url({ protocol: /^http$/, error: 'expected an http:// proxy URL, e.g. "http://proxy.internal:3128"' });

/** Kong's `http_proxy` / `https_proxy` / `no_proxy` keys for calls to the IdP. */
export const forwardProxyFields = () => ({
  http_proxy: proxyUrl()
    .optional()
    .describe("Forward proxy for `http://` calls to the IdP; credentials go in the URL (`http://user:pass@host:port`)."),
  https_proxy: proxyUrl().optional().describe("Forward proxy for `https://` calls to the IdP (CONNECT); credentials go in the URL."),
  no_proxy: z.string().optional().describe("Comma-separated hosts reached directly (`idp.internal,.example.com`, `*` for all)."),
});

/** Kong's entity names. */
export const ENTITY_NAME = /^[a-zA-Z0-9.\-_~]{1,128}$/;
export const entityName = () => z.string().regex(ENTITY_NAME, "expected a name of letters, digits and . - _ ~ (at most 128)");

/** A string or an array of strings, normalised to an array (Kong accepts both for some keys). */
export const oneOrMany = <T extends z.ZodType>(item: T) => z.union([item.transform((v) => [v] as z.output<T>[]), z.array(item)]);

/**
 * A TOML table: unknown keys are errors, with a "did you mean" from the table's own keys. A key
 * of the Kong table it mirrors (`kong`) that it does not have is named as a Kong setting this
 * gateway does not implement, never as unknown.
 */
export const table = <S extends z.ZodRawShape>(shape: S, kong?: KongTable) => {
  const kongKeys: ReadonlySet<string> = new Set(kong ? KONG_KEYS[kong] : []);
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code !== "unrecognized_keys") return undefined;
      return issue.keys
        .map((k: string) => (kongKeys.has(k) ? notImplementedMessage(k) : `unknown key "${k}"${didYouMean(k, Object.keys(shape))}`))
        .join("; ");
    },
  });
};

/** `table` for a table that mirrors one of Kong's (an entity, a plugin's config, kong.conf). */
export const kongTable = <S extends z.ZodRawShape>(kong: KongTable, shape: S) => table(shape, kong);
