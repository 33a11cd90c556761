/**
 * A `[[consumers]]` entry: Kong's consumer, declared in the file. Authentication plugins map a
 * caller to one (openid-connect `consumer_claim`), plugins may be scoped to one, and the `acl`
 * plugin reads its `groups` (Kong's acl credentials).
 */
import { z } from "zod";
import { table } from "./fields.ts";

const name = () =>
  z
    .string()
    .min(1)
    .max(256)
    .regex(/^[^\r\n\0]+$/, "expected a name without CR, LF or NUL (it is sent in upstream headers)");

export const consumerSchema = () =>
  table({
    username: name()
      .optional()
      .describe("Unique name; `consumer` keys of plugins and `anonymous` refer to it. One of `username` and `custom_id` is needed."),
    custom_id: name().optional().describe('Unique id the consumer has elsewhere (e.g. the OAuth `client_id`), for `consumer_by = ["custom_id"]`.'),
    id: z
      .uuid("expected a UUID")
      .optional()
      .describe(
        "The consumer's id, sent upstream in `X-Consumer-ID`. Unset: a UUID derived from `username` (else `custom_id`), the same on every gateway.",
      ),
    tags: z.array(z.string().min(1)).default([]).describe("Free-form tags."),
    groups: z
      .array(name().regex(/^[^,]+$/, "expected a group name without a comma (groups are sent comma-separated)"))
      .default([])
      .describe("The consumer's ACL groups, matched by the `acl` plugin's `allow`/`deny`.")
      .meta({ kong: "Kong's `acls` credentials of the consumer (`- group: name`)" }),
  }).superRefine((c, ctx) => {
    if (c.username === undefined && c.custom_id === undefined) ctx.addIssue({ code: "custom", message: "expected 'username' or 'custom_id'" });
  });

export type ConsumerConfig = z.output<ReturnType<typeof consumerSchema>>;
