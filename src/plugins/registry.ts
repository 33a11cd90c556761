/** Plugin name -> definition. Adding a plugin is one import and one line here. */
import { acl } from "./acl/index.ts";
import { openIdConnect } from "./openid-connect/index.ts";
import { rateLimiting } from "./rate-limiting/index.ts";
import { requestTermination } from "./request-termination/index.ts";
import { upstreamOauth } from "./upstream-oauth/index.ts";
import type { PluginDefinition } from "./types.ts";

const plugins: PluginDefinition[] = [requestTermination, openIdConnect, upstreamOauth, acl, rateLimiting];

export const pluginRegistry: ReadonlyMap<string, PluginDefinition> = new Map(plugins.map((p) => [p.name, p]));
