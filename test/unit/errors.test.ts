/** The coded errors: what logs, metrics and the edge mapper read from each (src/errors.ts). */
import { describe, expect, it } from "bun:test";
import {
  AccessDeniedError,
  AccessTokenError,
  ConfigError,
  GatewayError,
  KeyStoreError,
  KeyStoreUnavailableError,
  NoRouteError,
  RedisUnavailableError,
  UpstreamTimeoutError,
} from "../../src/errors.ts";

describe("a gateway error with a fixed code, status and message", () => {
  it("is an instance of its own class and of GatewayError, named for its class", () => {
    const e = new UpstreamTimeoutError("read timed out after 2000 ms");
    expect(e).toBeInstanceOf(UpstreamTimeoutError);
    expect(e).toBeInstanceOf(GatewayError);
    expect(e).toBeInstanceOf(Error);
    expect(e).not.toBeInstanceOf(NoRouteError);
    expect(e.name).toBe("UpstreamTimeoutError");
    expect(UpstreamTimeoutError.name).toBe("UpstreamTimeoutError");
  });

  it("carries its code, status and Kong's message, with the detail as its message", () => {
    const e = new UpstreamTimeoutError("read timed out after 2000 ms");
    expect({ code: e.code, status: e.status, publicMessage: e.publicMessage, ours: e.ours }).toEqual({
      code: "upstream.timeout",
      status: 504,
      publicMessage: "The upstream server is timing out",
      ours: true,
    });
    expect(e.message).toBe("read timed out after 2000 ms");
    expect(e.detail).toBe("read timed out after 2000 ms");
  });

  it("without a detail, has its class name as its message", () => {
    const e = new AccessDeniedError();
    expect(e.message).toBe("AccessDeniedError");
    expect(e.detail).toBeUndefined();
    expect({ code: e.code, status: e.status, ours: e.ours }).toEqual({ code: "acl.denied", status: 403, ours: false });
  });

  it("keeps the cause it was given", () => {
    const cause = new Error("ECONNRESET");
    expect(new NoRouteError("x", { cause }).cause).toBe(cause);
  });
});

describe("the other coded errors", () => {
  it("are named for their class and carry their code", () => {
    const cases = [
      [new ConfigError("bad"), "ConfigError", "config.invalid"],
      [new RedisUnavailableError("refused"), "RedisUnavailableError", "cluster.redis_unavailable"],
      [new AccessTokenError("expired", "jwt expired"), "AccessTokenError", "token.expired"],
      [new KeyStoreError("keys.jwks_file", "unreadable"), "KeyStoreError", "keys.invalid"],
      [new KeyStoreUnavailableError("redis down"), "KeyStoreUnavailableError", "keys.unavailable"],
    ] as const;
    for (const [error, name, code] of cases) expect({ name: error.name, code: error.code }).toEqual({ name, code });
  });

  it("keep their messages and settings", () => {
    expect(new RedisUnavailableError(undefined).message).toBe("redis is unreachable");
    expect(new RedisUnavailableError("refused").message).toBe("redis is unreachable: refused");
    const unavailable = new KeyStoreUnavailableError("redis down");
    expect(unavailable).toBeInstanceOf(KeyStoreError);
    expect(unavailable.setting).toBe("cluster.redis_url");
  });
});
