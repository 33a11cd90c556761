/** The admin API shows configuration, never secrets. */

// `_token` at the end (`admin_token`, `access_token`), not anywhere: `bearer_token_param_type` is a setting.
const SECRET_NAME = /secret|password|salt|private|(^|_)key$|(^|_)token$/i;
const REDACTED = "[redacted]";

/** A deep copy with the values of secret-looking keys (and the plugin's own `secretKeys`) replaced. */
export function redact(value: unknown, extra: readonly string[] = []): unknown {
  if (value instanceof URL) return value.href;
  // A URL's user:password (a forward proxy's credentials) is a secret wherever it appears.
  if (typeof value === "string" && /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(value))
    return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, `$1${REDACTED}@`);
  if (Array.isArray(value)) return value.map((v) => redact(v, extra));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = v !== undefined && v !== null && (SECRET_NAME.test(k) || extra.includes(k)) ? REDACTED : redact(v, extra);
    }
    return out;
  }
  return value;
}
