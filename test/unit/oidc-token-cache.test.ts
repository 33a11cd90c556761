import { describe, expect, it } from "bun:test";
import { AuthError, IdpError } from "../../src/errors.ts";
import { cacheTtl, RETRY_AFTER_FAILURE_MS, safetyMargin, TokenCache, type Fresh, type TokenCachePolicy } from "../../src/oidc/client/token-cache.ts";

const policy: TokenCachePolicy = { ttl: 3600, ttlNeg: 10, maxEntries: 100 };

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

/** A fetch that counts its calls and answers what the test says. */
function counter<T>(answer: () => Promise<Fresh<T>> | Fresh<T>) {
  const f = Object.assign(
    async () => {
      f.calls++;
      return answer();
    },
    { calls: 0 },
  );
  return f;
}

describe("token cache TTL", () => {
  it("keeps a token for its remaining validity minus a 10 % margin, at most 30 s", () => {
    expect(safetyMargin(300)).toBe(30);
    expect(safetyMargin(60)).toBe(6);
    expect(safetyMargin(3600)).toBe(30);
    expect(cacheTtl(policy, 300)).toBe(270);
    expect(cacheTtl(policy, 2)).toBeCloseTo(1.8);
  });

  it("uses cache_ttl when the token states no lifetime", () => {
    expect(cacheTtl(policy, undefined)).toBe(3600);
  });

  it("clamps by cache_ttl_max and cache_ttl_min, but never past the token's own expiry", () => {
    expect(cacheTtl({ ...policy, ttlMax: 60 }, 300)).toBe(60);
    expect(cacheTtl({ ...policy, ttlMin: 200 }, 100)).toBe(100);
    expect(cacheTtl({ ...policy, ttlMin: 200 }, 1000)).toBe(970);
    expect(cacheTtl({ ...policy, ttlMin: 50 }, undefined)).toBe(3600);
  });

  it("serves a cached token until its TTL, then fetches a new one", async () => {
    const t = clock();
    const cache = new TokenCache<string>(policy, { now: t.now });
    let n = 0;
    const fetch = counter(() => ({ value: `token-${++n}`, expiresAt: t.now() + 100_000 }));
    expect(await cache.get("k", fetch)).toEqual({ state: "miss", value: "token-1" });
    t.advance(50_000);
    expect(await cache.get("k", fetch)).toEqual({ state: "hit", value: "token-1" });
    t.advance(40_001); // past 90 s = 100 s - 10 % margin
    expect(await cache.get("k", fetch)).toEqual({ state: "miss", value: "token-2" });
    expect(fetch.calls).toBe(2);
  });

  it("does not cache a token that is about to expire", async () => {
    const t = clock();
    const cache = new TokenCache<string>(policy, { now: t.now });
    const fetch = counter(() => ({ value: "dying", expiresAt: t.now() - 1 }));
    await cache.get("k", fetch);
    await cache.get("k", fetch);
    expect(fetch.calls).toBe(2);
    expect(cache.size).toBe(0);
  });
});

describe("token cache refresh ahead", () => {
  it("answers a hit past 80 % of the TTL at once and refreshes in the background", async () => {
    const t = clock();
    const cache = new TokenCache<string>(policy, { now: t.now });
    let n = 0;
    const fetch = counter(() => ({ value: `token-${++n}`, expiresAt: t.now() + 100_000 }));
    await cache.get("k", fetch);
    t.advance(75_000); // TTL 90 s, refresh from 72 s
    expect(await cache.get("k", fetch)).toEqual({ state: "refresh", value: "token-1" });
    await Bun.sleep(1);
    expect(fetch.calls).toBe(2);
    expect(await cache.get("k", fetch)).toEqual({ state: "hit", value: "token-2" });
  });

  it("keeps serving the cached token when the background refresh fails, and waits before retrying", async () => {
    const t = clock();
    const errors: unknown[] = [];
    const cache = new TokenCache<string>(policy, { now: t.now, onRefreshError: (e) => errors.push(e) });
    let fail = false;
    const fetch = counter<string>(() => {
      if (fail) throw new IdpError("unreachable", "down");
      return { value: "token", expiresAt: t.now() + 100_000 };
    });
    await cache.get("k", fetch);
    fail = true;
    t.advance(75_000);
    expect((await cache.get("k", fetch)).state).toBe("refresh");
    await Bun.sleep(1);
    expect(errors).toHaveLength(1);
    expect(await cache.get("k", fetch)).toEqual({ state: "hit", value: "token" });
    expect(fetch.calls).toBe(2);
    t.advance(RETRY_AFTER_FAILURE_MS);
    expect((await cache.get("k", fetch)).state).toBe("refresh");
  });
});

describe("token cache single flight", () => {
  it("shares one fetch among 200 concurrent misses for the same key", async () => {
    const cache = new TokenCache<string>(policy);
    const fetch = counter(async () => {
      await Bun.sleep(20);
      return { value: "shared", expiresAt: Date.now() + 60_000 };
    });
    const results = await Promise.all(Array.from({ length: 200 }, () => cache.get("k", fetch)));
    expect(fetch.calls).toBe(1);
    expect(new Set(results.map((r) => ("value" in r ? r.value : undefined)))).toEqual(new Set(["shared"]));
  });

  it("fetches separately for different keys", async () => {
    const cache = new TokenCache<string>(policy);
    const fetch = counter(async () => ({ value: crypto.randomUUID(), expiresAt: Date.now() + 60_000 }));
    const [a, b] = await Promise.all([cache.get("a", fetch), cache.get("b", fetch)]);
    expect(fetch.calls).toBe(2);
    expect(a).not.toEqual(b);
  });

  it("shares a failure too, and tries again on the next request", async () => {
    const cache = new TokenCache<string>(policy);
    let fail = true;
    const fetch = counter(async () => {
      await Bun.sleep(5);
      if (fail) throw new IdpError("timeout", "slow");
      return { value: "ok" };
    });
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => cache.get("k", fetch)));
    expect(results.every((r) => r.status === "rejected")).toBe(true);
    expect(fetch.calls).toBe(1);
    fail = false;
    expect(await cache.get("k", fetch)).toEqual({ state: "miss", value: "ok" });
  });
});

describe("token cache bound", () => {
  it("evicts the least recently used entry beyond cache_tokens_max", async () => {
    let evicted = 0;
    const cache = new TokenCache<string>({ ...policy, maxEntries: 2 }, { onEvict: () => evicted++ });
    const fresh = (v: string) => async () => ({ value: v, expiresAt: Date.now() + 60_000 });
    await cache.get("a", fresh("A"));
    await cache.get("b", fresh("B"));
    await cache.get("a", fresh("A2")); // a is now the most recently used
    await cache.get("c", fresh("C")); // evicts b
    expect(cache.size).toBe(2);
    expect(evicted).toBe(1);
    expect(await cache.get("a", fresh("A3"))).toEqual({ state: "hit", value: "A" });
    expect(await cache.get("b", fresh("B2"))).toEqual({ state: "miss", value: "B2" });
  });
});

describe("token cache negative entries", () => {
  const refused = () => new AuthError({ error: "invalid_client" });

  it("answers refused credentials from the cache for cache_ttl_neg, then asks again", async () => {
    const t = clock();
    const cache = new TokenCache<string>(policy, { now: t.now });
    const fetch = counter<string>(() => {
      throw refused();
    });
    await expect(cache.get("k", fetch)).rejects.toBeInstanceOf(AuthError);
    const second = await cache.get("k", fetch);
    expect(second.state).toBe("negative");
    expect("error" in second && second.error).toBeInstanceOf(AuthError);
    expect(fetch.calls).toBe(1);
    t.advance(10_001);
    await expect(cache.get("k", fetch)).rejects.toBeInstanceOf(AuthError);
    expect(fetch.calls).toBe(2);
  });

  it("never caches an IdP failure as a rejection", async () => {
    const cache = new TokenCache<string>(policy);
    const fetch = counter<string>(() => {
      throw new IdpError("unreachable", "down");
    });
    await expect(cache.get("k", fetch)).rejects.toBeInstanceOf(IdpError);
    await expect(cache.get("k", fetch)).rejects.toBeInstanceOf(IdpError);
    expect(fetch.calls).toBe(2);
  });

  it("drops a cached token when a refresh finds its credentials refused", async () => {
    const t = clock();
    const cache = new TokenCache<string>(policy, { now: t.now });
    let revoked = false;
    const fetch = counter<string>(() => {
      if (revoked) throw refused();
      return { value: "token", expiresAt: t.now() + 100_000 };
    });
    await cache.get("k", fetch);
    revoked = true;
    t.advance(75_000);
    expect((await cache.get("k", fetch)).state).toBe("refresh");
    await Bun.sleep(1);
    expect((await cache.get("k", fetch)).state).toBe("negative");
  });

  it("keeps negative entries in their own bound so wrong secrets cannot evict good tokens", async () => {
    const cache = new TokenCache<string>({ ...policy, maxEntries: 10 });
    await cache.get("good", async () => ({ value: "token", expiresAt: Date.now() + 60_000 }));
    for (let i = 0; i < 50; i++) {
      await cache
        .get(`wrong-${i}`, async () => {
          throw refused();
        })
        .catch(() => {});
    }
    expect(await cache.get("good", async () => ({ value: "other" }))).toEqual({ state: "hit", value: "token" });
  });
});

describe("token cache resurrection", () => {
  it("serves a stale but still valid token while the IdP fails, within cache_ttl_resurrect", async () => {
    const t = clock();
    const cache = new TokenCache<string>({ ...policy, ttlMax: 10, ttlResurrect: 30 }, { now: t.now });
    let down = false;
    const fetch = counter<string>(() => {
      if (down) throw new IdpError("unreachable", "down");
      return { value: "token", expiresAt: t.now() + 300_000 };
    });
    await cache.get("k", fetch);
    down = true;
    t.advance(11_000);
    expect(await cache.get("k", fetch)).toEqual({ state: "resurrect", value: "token" });
    expect(fetch.calls).toBe(2);
    // Within the retry pause the IdP is not asked again.
    expect(await cache.get("k", fetch)).toEqual({ state: "resurrect", value: "token" });
    expect(fetch.calls).toBe(2);
    t.advance(30_000); // past TTL + cache_ttl_resurrect
    await expect(cache.get("k", fetch)).rejects.toBeInstanceOf(IdpError);
  });

  it("never resurrects a token past its own expiry", async () => {
    const t = clock();
    const cache = new TokenCache<string>({ ...policy, ttlResurrect: 3600 }, { now: t.now });
    let down = false;
    const fetch = counter<string>(() => {
      if (down) throw new IdpError("unreachable", "down");
      return { value: "token", expiresAt: t.now() + 100_000 };
    });
    await cache.get("k", fetch);
    down = true;
    t.advance(95_000);
    expect((await cache.get("k", fetch)).state).toBe("resurrect");
    t.advance(RETRY_AFTER_FAILURE_MS + 5_000); // the token itself has expired now
    await expect(cache.get("k", fetch)).rejects.toBeInstanceOf(IdpError);
  });

  it("does not resurrect unless cache_ttl_resurrect is set", async () => {
    const t = clock();
    const cache = new TokenCache<string>({ ...policy, ttlMax: 10 }, { now: t.now });
    let down = false;
    const fetch = () => {
      if (down) throw new IdpError("unreachable", "down");
      return Promise.resolve({ value: "token", expiresAt: t.now() + 300_000 });
    };
    await cache.get("k", fetch);
    down = true;
    t.advance(11_000);
    await expect(cache.get("k", fetch)).rejects.toBeInstanceOf(IdpError);
  });
});

describe("token cache kept values", () => {
  it("stores and answers what 'keep' keeps of a fetched value, while the fleet's store gets it whole", async () => {
    const stored: unknown[] = [];
    const cache = new TokenCache<{ token: string; extra?: string }>(policy, {
      keep: (value) => ({ token: value.token }),
      shared: {
        async load(_key, fetch) {
          const fresh = await fetch();
          stored.push(fresh.value);
          return fresh;
        },
      },
    });
    const fetch = counter(() => ({ value: { token: "t", extra: "x".repeat(1000) }, expiresAt: Date.now() + 60_000 }));
    const miss = await cache.get("k", fetch);
    const hit = await cache.get("k", fetch);
    expect(miss).toEqual({ state: "miss", value: { token: "t" } });
    expect(hit.state).toBe("hit");
    // The same object on the miss and every hit: what callers remember per grant stays valid.
    expect("value" in hit && "value" in miss && hit.value === miss.value).toBe(true);
    expect(stored).toEqual([{ token: "t", extra: "x".repeat(1000) }]);
    expect(fetch.calls).toBe(1);
  });
});
