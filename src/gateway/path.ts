/**
 * Request paths are normalised before routing, as Kong does, so `/public/../admin` cannot slip
 * past a plugin on `/admin`: unreserved characters are percent-decoded, dot segments removed
 * and repeated slashes merged (RFC 3986 §6.2.2). Paths an upstream could read as another route's
 * are refused (docs/security.md, "Path handling").
 */

/**
 * `[server] escaped_slashes`, Envoy's `path_with_escaped_slashes_action`: `%2F` and `%5C` in a
 * path are refused (400), kept as they are (routed as opaque characters), or unescaped to `/`
 * before routing (a backslash is a separator to WHATWG URL parsers, so `%5C` becomes `/` too).
 */
export type EscapedSlashes = "reject" | "keep" | "unescape";

const NEEDS_WORK = /%|\/\.|\/\//;
const UNRESERVED = /%(2[DdEe]|3[0-9]|4[1-9A-Fa-f]|5[0-9Aa]|5[Ff]|6[1-9A-Fa-f]|7[0-9Aa]|7[Ee])/g;
const ESCAPED_SLASH = /%(2f|5c)/i;
/** `..;x` or `.;x`: Tomcat and Spring drop the `;` parameter and then see a dot segment. */
const DOT_SEGMENT_WITH_PARAMS = /^\.\.?(;|%3b)/i;

/** The path routing and the upstream see, or `undefined` when the request must be refused (400). */
export function normalizePath(path: string, escapedSlashes: EscapedSlashes = "reject"): string | undefined {
  if (!NEEDS_WORK.test(path)) return path;
  let p = path.replace(UNRESERVED, (m) => String.fromCharCode(parseInt(m.slice(1), 16)));
  if (escapedSlashes !== "keep" && ESCAPED_SLASH.test(p)) {
    if (escapedSlashes === "reject") return undefined;
    p = p.replace(/%(2f|5c)/gi, "/");
  }
  p = p.replace(/%[0-9a-f]{2}/g, (m) => m.toUpperCase()).replace(/\/{2,}/g, "/");
  const out: string[] = [];
  const segments = p.split("/");
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    if (DOT_SEGMENT_WITH_PARAMS.test(s)) return undefined;
    if (s === ".") {
      if (i === segments.length - 1) out.push("");
    } else if (s === "..") {
      out.pop();
      if (i === segments.length - 1) out.push("");
    } else out.push(s);
  }
  return "/" + out.join("/");
}

/** Splits `/a/b?x=1` into path and `?x=1` without building a URL object. */
export function splitTarget(url: string): { path: string; search: string } {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return { path: "/", search: "" };
  const q = url.indexOf("?", start);
  const h = url.indexOf("#", start);
  const end = q >= 0 ? q : h >= 0 ? h : url.length;
  return { path: url.slice(start, end), search: q >= 0 ? url.slice(q, h > q ? h : url.length) : "" };
}
