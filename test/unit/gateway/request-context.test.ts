/** The gateway's own request context and plugin chain: Hono's surface and rules, without Hono on the proxy path. */
import { describe, expect, it } from "bun:test";
import type { PluginHandler } from "../../../src/gateway/context.ts";
import { compose, NEXT_TWICE } from "../../../src/gateway/plugin-chain.ts";
import { GatewayContext } from "../../../src/gateway/request-context.ts";
import type { ConsumerDirectory } from "../../../src/plugins/consumers.ts";

const conn = { remoteAddress: "127.0.0.1", localPort: 8000, tls: false };
const context = () => new GatewayContext(new Request("http://gw.test/a?b=c"), conn, "/a", "?b=c", "id-1", {} as ConsumerDirectory);

describe("the request context", () => {
  it("offers plugins c.req.raw, c.env, c.var and c.set", () => {
    const c = context();
    expect(c.req.raw.url).toBe("http://gw.test/a?b=c");
    expect(c.env.localPort).toBe(8000);
    expect(c.var.requestId).toBe("id-1");
    expect(c.var.upstreamLatency).toBe(-1);
    expect(c.var.displayErrors).toBe(false);
    c.set("displayErrors", true);
    expect(c.var.displayErrors).toBe(true);
    expect(c.search).toBe("?b=c");
  });
});

describe("the plugin chain", () => {
  it("runs plugins in order around the proxy step, each after-part in reverse", async () => {
    const seen: string[] = [];
    const step =
      (name: string): PluginHandler =>
      async (_c, next) => {
        seen.push(`${name}:before`);
        await next();
        seen.push(`${name}:after`);
      };
    const proxy: PluginHandler = async (c) => {
      seen.push("proxy");
      c.res = new Response("ok");
    };
    const c = context();
    await compose([step("a"), step("b"), proxy])(c);
    expect(seen).toEqual(["a:before", "b:before", "proxy", "b:after", "a:after"]);
    expect(await c.res.text()).toBe("ok");
  });

  it("makes a plugin's returned Response the answer, without running the rest", async () => {
    let proxied = false;
    const c = context();
    await compose([async () => new Response("denied", { status: 403 }), async () => void (proxied = true)])(c);
    expect(c.res.status).toBe(403);
    expect(proxied).toBe(false);
  });

  it("refuses a second call of next(), as Hono does", async () => {
    let proxied = 0;
    const twice: PluginHandler = async (_c, next) => {
      await next();
      await next();
    };
    await expect(compose([twice, async () => void proxied++])(context())).rejects.toThrow(NEXT_TWICE);
    expect(proxied).toBe(1);
  });
});
