/** Every call to an IdP is counted and timed the same way (`gateway_idp_requests_total`, `gateway_idp_request_duration_seconds`). */
import { AuthError, IdpError } from "../../errors.ts";
import type { IdpEndpoint, Metrics } from "../../metrics.ts";

/** The outcome label of a failed call: the IdP refused the credentials, an `IdpError`'s failure, or "error". */
function failureOutcome(error: unknown): string {
  if (error instanceof AuthError) return "refused";
  if (error instanceof IdpError) return error.failure;
  return "error";
}

/** Runs `call`, recording its outcome (`outcome(result)`, "ok" by default) and its duration. */
export async function timedIdpCall<T>(
  metrics: Pick<Metrics, "idp"> | undefined,
  endpoint: IdpEndpoint,
  call: () => Promise<T>,
  outcome: (result: T) => string = () => "ok",
): Promise<T> {
  const started = performance.now();
  try {
    const result = await call();
    metrics?.idp(endpoint, outcome(result), (performance.now() - started) / 1000);
    return result;
  } catch (error) {
    metrics?.idp(endpoint, failureOutcome(error), (performance.now() - started) / 1000);
    throw error;
  }
}
