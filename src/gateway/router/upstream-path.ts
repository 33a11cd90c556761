/** Kong's `path_handling`: how the service path and the (stripped) request path are joined. */
export function upstreamPath(servicePath: string, stripped: string, handling: "v0" | "v1"): string {
  const base = servicePath || "/";
  if (stripped === "") return base;
  const baseSlash = base.endsWith("/");
  const restSlash = stripped.startsWith("/");
  if (baseSlash && restSlash) return base + stripped.slice(1);
  if (baseSlash || restSlash) return base + stripped;
  return handling === "v0" ? `${base}/${stripped}` : base + stripped;
}
