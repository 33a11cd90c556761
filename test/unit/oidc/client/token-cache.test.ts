import { describe, expect, it } from "bun:test";
import { AuthError, IdpError } from "../../../../src/errors.ts";
import {
  cacheTtl,
  HOT_VALUES,
  RETRY_AFTER_FAILURE_MS,
  safetyMargin,
  TokenCache,
  type Fresh,
  type TokenCachePolicy,
  type ValueCodec,
} from "../../../../src/oidc/client/token-cache.ts";

const policy: TokenCachePolicy = { ttl: 3600, ttlNeg: 10, maxEntries: 100 };

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

/** A cache whose token's background refresh (at 75 % of its life) has just failed at the IdP. */
async function afterFailedRefresh() {
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
  return { t, cache, fetch, errors };
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
    const { t, cache, fetch, errors } = await afterFailedRefresh();
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

describe("token cache bound under turnover", () => {
  it("never evicts a key that is hit between the arrivals of new keys, however many arrive", async () => {
    const cache = new TokenCache<string>({ ...policy, maxEntries: 100 });
    const fresh = (v: string) => async () => ({ value: v, expiresAt: Date.now() + 60_000 });
    await cache.get("hot", fresh("H"));
    for (let i = 0; i < 1000; i++) {
      await cache.get(`cold-${i}`, fresh(`C${i}`));
      expect((await cache.get("hot", fresh("H2"))).state).toBe("hit");
    }
    expect(cache.size).toBe(100);
    // The oldest cold keys went first.
    expect((await cache.get("cold-0", fresh("again"))).state).toBe("miss");
    expect((await cache.get("cold-999", fresh("again"))).state).toBe("hit");
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

/** A codec that packs values as JSON under a number and records what it does. */
function recordingCodec() {
  let next = 0;
  const live = new Map<number, string>();
  const log = { packed: 0, unpacked: 0, freed: [] as number[] };
  const codec: ValueCodec<{ token: string }> = {
    pack(value) {
      log.packed++;
      live.set(next, JSON.stringify(value));
      return next++;
    },
    unpack(packed) {
      log.unpacked++;
      const text = live.get(packed as number);
      if (text === undefined) throw new Error(`packed value ${String(packed)} used after it was freed`);
      return JSON.parse(text);
    },
    free(packed) {
      live.delete(packed as number);
      log.freed.push(packed as number);
    },
  };
  return { codec, log, live };
}

describe("token cache with a codec (tokens kept packed)", () => {
  const fresh = (token: string) => async () => ({ value: { token }, expiresAt: Date.now() + 60_000 });

  it("answers a recently served value as the same object, without unpacking it", async () => {
    const { codec, log } = recordingCodec();
    const cache = new TokenCache<{ token: string }>(policy, { codec });
    const miss = await cache.get("k", fresh("t1"));
    const hit = await cache.get("k", fresh("t2"));
    expect(miss).toEqual({ state: "miss", value: { token: "t1" } });
    expect("value" in hit && "value" in miss && hit.value === miss.value).toBe(true);
    expect(log).toEqual({ packed: 1, unpacked: 0, freed: [] });
  });

  it("unpacks a value once more than HOT_VALUES others were served since, and keeps it unpacked again", async () => {
    const { codec, log } = recordingCodec();
    const cache = new TokenCache<{ token: string }>({ ...policy, maxEntries: HOT_VALUES + 10 }, { codec });
    await cache.get("first", fresh("t-first"));
    for (let i = 0; i < HOT_VALUES; i++) await cache.get(`k${i}`, fresh(`t${i}`));
    expect(log.unpacked).toBe(0);
    expect(await cache.get("first", fresh("other"))).toEqual({ state: "hit", value: { token: "t-first" } });
    expect(log.unpacked).toBe(1);
    await cache.get("first", fresh("other"));
    expect(log.unpacked).toBe(1);
  });

  it("frees the packed value of an evicted, a replaced, a deleted and a refused entry, and on clear", async () => {
    const { codec, log, live } = recordingCodec();
    const clock_ = clock();
    const cache = new TokenCache<{ token: string }>({ ...policy, maxEntries: 2 }, { codec, now: clock_.now });
    const at = (ms: number) => async () => ({ value: { token: `t${ms}` }, expiresAt: clock_.now() + ms });
    await cache.get("a", at(100_000));
    await cache.get("b", at(100_000));
    await cache.get("c", at(100_000)); // evicts a (0)
    expect(log.freed).toEqual([0]);
    clock_.advance(95_000); // past b's TTL: the next get stores a new value for b (1 freed)
    await cache.get("b", at(100_000));
    expect(log.freed).toEqual([0, 1]);
    cache.delete("c");
    expect(log.freed).toEqual([0, 1, 2]);
    clock_.advance(95_000);
    await expect(cache.get("b", async () => Promise.reject(new AuthError({ error: "invalid_client" })))).rejects.toBeInstanceOf(AuthError);
    expect(log.freed).toEqual([0, 1, 2, 3]);
    await cache.get("d", at(100_000));
    cache.clear();
    expect(live.size).toBe(0);
    expect(cache.size).toBe(0);
  });

  it("never unpacks a freed value: a refresh that replaces an entry leaves the value already served intact", async () => {
    const { codec } = recordingCodec();
    const clock_ = clock();
    const cache = new TokenCache<{ token: string }>(policy, { codec, now: clock_.now });
    const at = (token: string) => async () => ({ value: { token }, expiresAt: clock_.now() + 100_000 });
    await cache.get("k", at("old"));
    clock_.advance(80_000); // past 80 % of the TTL: refresh ahead
    const served = await cache.get("k", at("new"));
    expect(served).toEqual({ state: "refresh", value: { token: "old" } });
    await Bun.sleep(0);
    expect(await cache.get("k", at("newer"))).toEqual({ state: "hit", value: { token: "new" } });
    expect(served).toEqual({ state: "refresh", value: { token: "old" } });
  });
});

describe("token cache plain hits without a promise", () => {
  it("answers a fresh entry at once, and leaves misses, refresh-ahead and expiry to get", async () => {
    const t = clock();
    const cache = new TokenCache<string>(policy, { now: t.now });
    let n = 0;
    const fetch = counter(() => ({ value: `token-${++n}`, expiresAt: t.now() + 100_000 }));
    expect(cache.hit("k")).toBeUndefined();
    await cache.get("k", fetch);
    expect(cache.hit("k")).toBe("token-1");
    expect(cache.hit("other")).toBeUndefined();
    t.advance(75_000); // TTL 90 s, refresh from 72 s: get's to start
    expect(cache.hit("k")).toBeUndefined();
    expect((await cache.get("k", fetch)).state).toBe("refresh");
    await Bun.sleep(1);
    expect(cache.hit("k")).toBe("token-2");
    t.advance(91_000);
    expect(cache.hit("k")).toBeUndefined();
    expect(fetch.calls).toBe(2);
  });

  it("serves the entry it keeps after a failed refresh until the retry is due", async () => {
    const { t, cache } = await afterFailedRefresh();
    expect(cache.hit("k")).toBe("token");
    t.advance(RETRY_AFTER_FAILURE_MS);
    expect(cache.hit("k")).toBeUndefined();
  });
});
