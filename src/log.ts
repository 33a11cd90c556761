/**
 * JSON-lines logging. Fields are chosen by the caller; secrets, tokens and proofs are never
 * passed in (the e2e suite greps the whole log for the secrets it used).
 */

export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  enabled(level: LogLevel): boolean;
  /** A logger that adds `fields` to every line (e.g. the plugin name). */
  child(fields: LogFields): Logger;
  /** Changes the level of this logger and all its children (config reload). */
  setLevel(level: LogLevel): void;
}

export type LogSink = (line: string) => void;

const stdout: LogSink = (line) => void process.stdout.write(line + "\n");

function serialiseError(value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message, ...("code" in value ? { code: (value as { code: unknown }).code } : {}) };
  return value;
}

export function createLogger(level: LogLevel = "info", sink: LogSink = stdout, base: LogFields = {}, state = { min: ORDER[level] }): Logger {
  const write = (lvl: LogLevel, event: string, fields?: LogFields) => {
    if (ORDER[lvl] < state.min) return;
    const line: LogFields = { time: new Date().toISOString(), level: lvl, event, ...base };
    if (fields) for (const k in fields) line[k] = serialiseError(fields[k]);
    sink(JSON.stringify(line));
  };
  return {
    debug: (e, f) => write("debug", e, f),
    info: (e, f) => write("info", e, f),
    warn: (e, f) => write("warn", e, f),
    error: (e, f) => write("error", e, f),
    enabled: (lvl) => ORDER[lvl] >= state.min,
    child: (fields) => createLogger(level, sink, { ...base, ...fields }, state),
    setLevel: (lvl) => void (state.min = ORDER[lvl]),
  };
}
