/** A `Cookie` header's `name=value` pairs, split by `;` (RFC 6265 §4.2.1), read as sent. */

/** The values of every pair named `name`, in order (none: an empty list). */
export function cookieValues(header: string | null, name: string): string[] {
  if (header === null) return [];
  const values: string[] = [];
  for (const pair of header.split(";")) {
    const eq = pair.indexOf("=");
    if (eq >= 0 && pair.slice(0, eq).trim() === name) values.push(pair.slice(eq + 1).trim());
  }
  return values;
}

/** The header without the pairs named `name` ("" when nothing is left). */
export function withoutCookie(header: string, name: string): string {
  return header
    .split(";")
    .filter((pair) => {
      const eq = pair.indexOf("=");
      return eq < 0 || pair.slice(0, eq).trim() !== name;
    })
    .map((pair) => pair.trim())
    .join("; ");
}
