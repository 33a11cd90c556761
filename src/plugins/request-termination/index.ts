/**
 * Kong's `request-termination`: answer every matching request with a fixed response and never
 * reach the upstream. Useful to close a route for maintenance, or to fence off a path.
 */
import { z } from "zod";
import { kongTable } from "../../config/fields.ts";
import { definePlugin } from "../types.ts";

const schema = () =>
  kongTable("request-termination", {
    status_code: z.int().min(100).max(599).default(503).describe("Status code of the response."),
    message: z.string().optional().describe('Sent as `{"message": ...}` unless `body` is set.'),
    body: z.string().optional().describe("Raw response body; needs `content_type`."),
    content_type: z.string().optional().describe("Content type of `body`."),
  }).superRefine((c, ctx) => {
    if (c.body !== undefined && c.message !== undefined)
      ctx.addIssue({ code: "custom", path: ["body"], message: "expected either 'message' or 'body', not both" });
    if (c.body !== undefined && c.content_type === undefined)
      ctx.addIssue({ code: "custom", path: ["content_type"], message: "expected 'content_type' because 'body' is set" });
  });

export const requestTermination = definePlugin<z.output<ReturnType<typeof schema>>>({
  name: "request-termination",
  priority: 2,
  secretKeys: [],
  schema,
  create(config) {
    const body = config.body ?? JSON.stringify({ message: config.message ?? defaultMessage(config.status_code) });
    const type = config.body !== undefined ? config.content_type! : "application/json; charset=utf-8";
    return {
      handler: (c) => {
        c.set("logFields", { ...c.var.logFields, terminated: true });
        return Promise.resolve(new Response(body, { status: config.status_code, headers: { "content-type": type } }));
      },
    };
  },
});

function defaultMessage(status: number): string {
  return status === 503 ? "Service unavailable" : status === 404 ? "Not found" : status === 403 ? "Forbidden" : "Request terminated";
}
