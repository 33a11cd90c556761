/** How a caller's body is read for parameters (credentials, `access_token`), from its Content-Type. */
export type BodyKind = "form" | "json";

/** A form, JSON (`application/json` or any `+json` type, RFC 6839), or nothing we read. */
export function bodyKind(contentType: string | null): BodyKind | undefined {
  const type = contentType?.split(";")[0]?.trim().toLowerCase();
  if (type === "application/x-www-form-urlencoded") return "form";
  if (type === "application/json" || type?.endsWith("+json")) return "json";
  return undefined;
}
