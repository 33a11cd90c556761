/** The one error a raw connect throws: the runtime's own errors differ between Bun and Deno. */
/** Why a connect failed: "timeout" (connect_timeout), "tls" (handshake or verification) or "refused" (anything else). */
export class ConnectError extends Error {
  constructor(
    readonly reason: "timeout" | "tls" | "refused",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ConnectError";
  }
}
