/**
 * JSON-lines logging. Fields are chosen by the caller; secrets, tokens and proofs are never
 * passed in (the e2e suite greps the whole log for the secrets it used).
 */
import { flushStdout, writeStdoutLine } from "./runtime/stdout.ts";

export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /**
   * An info line whose fields the caller already wrote as JSON members (`"a":1,"b":"x"`, no
   * braces): the access log, one line per request, without an object and a stringify per line.
   */
  infoJson(event: string, members: string): void;
  enabled(level: LogLevel): boolean;
  /** A logger that adds `fields` to every line (e.g. the plugin name). */
  child(fields: LogFields): Logger;
  /** Changes the level of this logger and all its children (config reload). */
  setLevel(level: LogLevel): void;
}

export type LogSink = (line: string) => void;

const stdout: LogSink = writeStdoutLine;

/** Writes the batched lines now (before the process exits). */
export const flushLog = flushStdout;

// The ISO time of the current millisecond, made once per millisecond rather than once per line.
let isoMs = 0;
let iso = "";
function isoNow(): string {
  const now = Date.now();
  if (now !== isoMs) {
    isoMs = now;
    iso = new Date(now).toISOString();
  }
  return iso;
}

function serialiseError(value: unknown): unknown {
  if (value instanceof Error)
    return { name: value.name, message: value.message, ...("code" in value ? { code: (value as { code: unknown }).code } : {}) };
  return value;
}

/**
 * Bounds how often one warning or error event is written: an attacker who can make a request
 * fail must not be able to flood the log (or the disk). Per `level` + `event`, at most `limit`
 * lines per window; the first line of the next window carries `suppressed`, the count dropped.
 * Access log and debug lines are one per request by design and are not sampled.
 */
export interface LogSampler {
  /** `undefined`: drop the line; otherwise write it with the suppressed count so far (0: none). */
  admit(key: string): number | undefined;
}

export function createLogSampler(limit = 20, windowMs = 1000, now: () => number = Date.now): LogSampler {
  const windows = new Map<string, { start: number; count: number; suppressed: number }>();
  return {
    admit(key) {
      const t = now();
      let w = windows.get(key);
      if (!w) {
        // Events are names in the code, a small set; the cap only guards against a bug.
        if (windows.size >= 1000) windows.clear();
        windows.set(key, (w = { start: t, count: 0, suppressed: 0 }));
      }
      if (t - w.start >= windowMs) {
        w.start = t;
        w.count = 0;
      }
      if (w.count >= limit) {
        w.suppressed++;
        return undefined;
      }
      w.count++;
      const suppressed = w.suppressed;
      w.suppressed = 0;
      return suppressed;
    },
  };
}

interface LoggerState {
  min: number;
  readonly sampler: LogSampler;
}

export function createLogger(
  level: LogLevel = "info",
  sink: LogSink = stdout,
  base: LogFields = {},
  state: LoggerState = { min: ORDER[level], sampler: createLogSampler() },
): Logger {
  const write = (lvl: LogLevel, event: string, fields?: LogFields) => {
    if (ORDER[lvl] < state.min) return;
    let suppressed = 0;
    if (lvl === "warn" || lvl === "error") {
      const admitted = state.sampler.admit(`${lvl} ${event}`);
      if (admitted === undefined) return;
      suppressed = admitted;
    }
    const line: LogFields = { time: isoNow(), level: lvl, event, ...base };
    if (fields) for (const k in fields) line[k] = serialiseError(fields[k]);
    if (suppressed > 0) line.suppressed = suppressed;
    sink(JSON.stringify(line));
    // Warnings and errors are written at once (they are rare and sampled): only the one-per-request lines wait for the batch.
    if (sink === stdout && ORDER[lvl] >= ORDER.warn) flushLog();
  };
  // The base fields as JSON members, made once per logger.
  const baseJson = JSON.stringify(base).slice(1, -1);
  const prefix = baseJson ? `,${baseJson}` : "";
  return {
    infoJson: (event, members) => {
      if (ORDER.info < state.min) return;
      sink(`{"time":"${isoNow()}","level":"info","event":${JSON.stringify(event)}${prefix}${members ? `,${members}` : ""}}`);
    },
    debug: (e, f) => write("debug", e, f),
    info: (e, f) => write("info", e, f),
    warn: (e, f) => write("warn", e, f),
    error: (e, f) => write("error", e, f),
    enabled: (lvl) => ORDER[lvl] >= state.min,
    child: (fields) => createLogger(level, sink, { ...base, ...fields }, state),
    setLevel: (lvl) => void (state.min = ORDER[lvl]),
  };
}
