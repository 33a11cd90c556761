/**
 * Kong's `acl` plugin: lets a caller through when its groups are in `allow` (or none of them is in
 * `deny`). The groups are the consumer's (`[[consumers]] groups`, Kong's acl credentials) or, for a
 * caller without a consumer (or the anonymous one), the groups of its token
 * (openid-connect `authenticated_groups_claim`). Refusal: 403 {"message":"You cannot consume this service"}.
 */
import { z } from "zod";
import { table } from "../../config/fields.ts";
import { AccessDeniedError, NotAuthenticatedError } from "../../errors.ts";
import type { PluginHandler } from "../../gateway/context.ts";
import { definePlugin } from "../types.ts";

const group = () =>
  z
    .string()
    .min(1)
    .regex(/^[^,\r\n\0]+$/, "expected a group name without a comma, CR, LF or NUL");

const schema = () =>
  table({
    allow: z
      .array(group())
      .min(1)
      .optional()
      .describe("Groups allowed to call: a caller with none of them gets 403. One of `allow` and `deny` is needed."),
    deny: z.array(group()).min(1).optional().describe("Groups refused: a caller with any of them gets 403."),
    hide_groups_header: z
      .boolean()
      .default(false)
      .describe("Do not send the caller's groups upstream (`X-Consumer-Groups`, or `X-Authenticated-Groups` for a token's groups)."),
    always_use_authenticated_groups: z
      .boolean()
      .default(false)
      .describe(
        "Match the token's groups (`authenticated_groups_claim`) even when the caller has a consumer; the consumer's groups when the token has none.",
      ),
  }).superRefine((c, ctx) => {
    if (c.allow !== undefined && c.deny !== undefined)
      ctx.addIssue({ code: "custom", path: ["deny"], message: "expected either 'allow' or 'deny', not both" });
    if (c.allow === undefined && c.deny === undefined)
      ctx.addIssue({ code: "custom", path: ["allow"], message: "missing required key: one of 'allow' or 'deny'" });
  });

type AclConfig = z.output<ReturnType<typeof schema>>;

export const acl = definePlugin<AclConfig>({
  name: "acl",
  priority: 950, // Kong's: after authentication (openid-connect 1050), before rate-limiting (910)
  secretKeys: [],
  schema,
  consumerScoped: false,
  create(config) {
    const listed = new Set(config.allow ?? config.deny);
    const isAllow = config.allow !== undefined;
    const handler: PluginHandler = async (c, next) => {
      // A caller's own X-Consumer-Groups never gets here: the core drops identity headers (gateway/headers.ts).
      const headers = c.var.upstreamHeaders;
      const consumer = c.var.consumer;
      const token = c.var.authenticatedGroups;
      let groups: readonly string[] | undefined;
      let header = "x-consumer-groups";
      let fromConsumer = true;
      if (consumer && !c.var.anonymous && !(config.always_use_authenticated_groups && token)) {
        groups = consumer.groups;
      } else if (token) {
        fromConsumer = false;
        // No consumer, or the anonymous one: the token's groups decide (Kong: they override the anonymous consumer's).
        groups = token;
        header = "x-authenticated-groups";
      } else if (consumer) {
        groups = consumer.groups;
      }
      const list = groups ?? [];
      // No groups to match: refused (a deny list lets a known consumer through), 403 when the
      // caller authenticated, else Kong's bare 401.
      if (!groups || (list.length === 0 && isAllow)) {
        if (c.var.credential !== undefined || (consumer && !c.var.anonymous)) throw new AccessDeniedError("the caller has no groups");
        throw new NotAuthenticatedError("the acl plugin needs an authenticated consumer or authenticated groups");
      }
      let inList = false;
      for (const g of list) if (listed.has(g)) inList = true;
      if (isAllow ? !inList : inList) throw new AccessDeniedError(isAllow ? "no group of the caller is allowed" : "a group of the caller is denied");
      if (config.hide_groups_header) headers.delete(header);
      else if (list.length > 0) headers.set(header, fromConsumer ? consumer!.groupsHeader : list.join(", "));
      return next();
    };
    return { handler };
  },
});
