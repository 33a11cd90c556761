/**
 * Request paths are normalised before routing, as Kong does, so `/public/../admin` cannot slip
 * past a plugin on `/admin`: unreserved characters are percent-decoded, dot segments removed
 * and repeated slashes merged (RFC 3986 §6.2.2).
 */

const NEEDS_WORK = /%|\/\.|\/\//;
const UNRESERVED = /%(2[DdEe]|3[0-9]|4[1-9A-Fa-f]|5[0-9Aa]|5[Ff]|6[1-9A-Fa-f]|7[0-9Aa]|7[Ee])/g;

export function normalizePath(path: string): string {
  if (!NEEDS_WORK.test(path)) return path;
  let p = path.replace(UNRESERVED, (m) => String.fromCharCode(parseInt(m.slice(1), 16)));
  p = p.replace(/%[0-9a-f]{2}/g, (m) => m.toUpperCase()).replace(/\/{2,}/g, "/");
  const out: string[] = [];
  const segments = p.split("/");
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
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
