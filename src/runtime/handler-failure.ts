/** What every listener answers when the request handler throws. */
import type { ListenOptions } from "./types.ts";

/** The gateway's answer (`onError`, which logs the failure), else a bare JSON 500. */
export function handlerFailed(options: ListenOptions, error: unknown, request: Request | undefined): Response {
  try {
    const answer = options.onError?.(error, request);
    if (answer) return answer;
  } catch {
    // The callback failed too: the bare answer below still goes out.
  }
  return new Response('{"message":"An unexpected error occurred"}', { status: 500, headers: { "content-type": "application/json" } });
}
