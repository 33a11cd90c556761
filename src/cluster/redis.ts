/**
 * The one file that knows the Redis client library (ioredis: pure JavaScript over `node:net`
 * and `node:tls`, the same on Bun, Deno and in the compiled binary). Everything else sees
 * `RedisLink`: a few commands, each bounded by `command_timeout`, that fail at once while
 * Redis is unreachable instead of queueing, so callers fall back to local caches without waiting.
 *
 * Connection management: ioredis reconnects by itself (capped backoff below); a Redis that
 * accepts the connection but stops answering is caught by the command timeout, after which
 * commands are refused until a `PING` probe gets an answer again.
 */
import { Redis, type RedisOptions } from "ioredis";
import type { ClusterHealth } from "./health.ts";
import { RedisUnavailableError } from "../errors.ts";
import { withSystemRoots } from "../runtime/system-roots.ts";

export interface RedisLinkOptions {
  readonly url: string;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly connectTimeout: number;
  readonly commandTimeout: number;
  /** Extra CAs (PEM) for `rediss://`, on top of the system roots. */
  readonly trustedCertificates?: readonly string[];
  readonly health: ClusterHealth;
}

export interface RedisLink {
  /** False while Redis is known not to answer: callers skip it. */
  readonly available: boolean;
  /** Resolves when connected, or after `ms` (never rejects). */
  ready(ms: number): Promise<boolean>;
  get(key: string): Promise<Uint8Array | null>;
  mget(keys: readonly string[]): Promise<(Uint8Array | null)[]>;
  /** `SET key value [PX ttl] [NX]` (no `ttlMs`: no expiry): false when `nx` and the key existed. */
  set(key: string, value: string | Uint8Array, ttlMs: number | undefined, options?: { readonly nx?: boolean }): Promise<boolean>;
  /**
   * Fixed-window counters, atomically in one round trip: unless one of `keys` already reached its
   * limit, each is incremented (and given its TTL when new). The counts after, and whether the
   * request was blocked (nothing incremented then).
   */
  countWindows(
    keys: readonly string[],
    limits: readonly number[],
    ttlsMs: readonly number[],
  ): Promise<{ readonly counts: number[]; readonly blocked: boolean }>;
  /** Deletes `key` only while it still holds `value` (a lock's owner token). */
  deleteIfEquals(key: string, value: string): Promise<boolean>;
  publish(channel: string, message: string): Promise<void>;
  /** Listens on `channel` over a second connection (resubscribed after reconnects). */
  subscribe(channel: string, onMessage: (message: string) => void): Promise<void>;
  /** `SCAN` over `pattern` (tests and diagnostics). */
  scan(pattern: string): Promise<string[]>;
  close(): Promise<void>;
}

/** KEYS: counters; ARGV: their limits, then their TTLs (ms). Returns the counts, then 1 when blocked. */
const COUNT_WINDOWS = `local n = #KEYS
local out = {}
local blocked = 0
for i = 1, n do
  local c = tonumber(redis.call("GET", KEYS[i]) or "0")
  out[i] = c
  if c >= tonumber(ARGV[i]) then blocked = 1 end
end
if blocked == 0 then
  for i = 1, n do
    out[i] = redis.call("INCR", KEYS[i])
    if out[i] == 1 then redis.call("PEXPIRE", KEYS[i], ARGV[n + i]) end
  end
end
out[n + 1] = blocked
return out`;

const DELETE_IF_EQUALS = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;

/** `host:port/db` of a Redis URL, for logs: never the user or password. */
export function redisAddress(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname && u.pathname !== "/" ? u.pathname : ""}`;
  } catch {
    return "redis";
  }
}

/**
 * `reply` bounded by `ms` of Redis's silence. When the timer fires after a stall of the gateway's
 * own (a busy CPU, a long GC), Redis's reply may already wait unread in the socket, and timers run
 * before I/O: one more turn of the event loop lets it be read before the command counts as timed out.
 */
function replyWithin<T>(reply: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      setTimeout(() => {
        if (settled) return;
        settled = true;
        reject(new Error(`Command timed out after ${ms} ms`));
      }, 1);
    }, ms);
    reply.then(
      (value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Reconnect after 50 ms, then back off to at most 1 s: a restarted Redis is used again within a second. */
const reconnectDelay = (attempt: number) => Math.min(50 * 2 ** Math.max(0, attempt - 1), 1000);

export function connectRedis(options: RedisLinkOptions): RedisLink {
  const { health } = options;
  const url = new URL(options.url);
  const base: RedisOptions = {
    connectTimeout: options.connectTimeout,
    // The command timeout is ours (replyWithin): ioredis's would also count the gateway's own stalls.
    // Fail fast while disconnected: a queued command would hold a request until Redis returns.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: reconnectDelay,
    // Shared links carry small values; the name shows in CLIENT LIST.
    connectionName: "oidc-gateway",
    disableClientInfo: true,
    lazyConnect: false,
    ...(options.username !== undefined ? { username: options.username } : {}),
    ...(options.password !== undefined ? { password: options.password } : {}),
    ...(url.protocol === "rediss:"
      ? { tls: { servername: url.hostname, ...(options.trustedCertificates?.length ? { ca: withSystemRoots(options.trustedCertificates) } : {}) } }
      : {}),
  };
  const client = new Redis(options.url, base);
  let subscriber: Redis | undefined;
  const handlers = new Map<string, (message: string) => void>();
  let closed = false;
  /** Set after a command timed out on an open connection; cleared by a successful probe. */
  let stalled = false;
  let probing: ReturnType<typeof setTimeout> | undefined;

  const describe = (error: unknown) => {
    const e = error as { code?: string; message?: string };
    return e?.code ?? (e?.message ? e.message.slice(0, 120) : "error");
  };
  client.on("ready", () => {
    stalled = false;
    health.recovered();
  });
  client.on("error", (error: unknown) => {
    if (!closed && client.status !== "ready") health.degraded(describe(error));
  });
  client.on("close", () => {
    if (!closed) health.degraded("connection closed");
  });

  const probe = () => {
    if (probing || closed) return;
    probing = setTimeout(async () => {
      probing = undefined;
      if (closed) return;
      try {
        await replyWithin(client.ping(), options.commandTimeout);
        stalled = false;
        health.recovered();
      } catch {
        probe();
      }
    }, 500);
    (probing as { unref?: () => void }).unref?.();
  };

  /** Runs one command; a timeout or connection error marks Redis degraded. */
  const run = async <T>(command: () => Promise<T>): Promise<T> => {
    if (closed || stalled || client.status !== "ready") throw new RedisUnavailableError(health.reason);
    try {
      return await replyWithin(command(), options.commandTimeout);
    } catch (error) {
      const message = (error as Error)?.message ?? "";
      if (/timed out/i.test(message)) {
        stalled = true;
        health.degraded("command timed out");
        probe();
      } else if (client.status !== "ready") {
        health.degraded(describe(error));
      }
      throw error;
    }
  };

  const toBytes = (b: Buffer | null): Uint8Array | null => (b === null ? null : new Uint8Array(b.buffer, b.byteOffset, b.byteLength));

  return {
    get available() {
      return !closed && !stalled && client.status === "ready";
    },
    ready(ms) {
      if (client.status === "ready") return Promise.resolve(true);
      return new Promise((resolve) => {
        const done = (ok: boolean) => {
          clearTimeout(timer);
          client.off("ready", onReady);
          resolve(ok);
        };
        const onReady = () => done(true);
        const timer = setTimeout(() => done(false), ms);
        client.on("ready", onReady);
      });
    },
    get: (key) => run(() => client.getBuffer(key)).then(toBytes),
    mget: (keys) => run(() => client.mgetBuffer(...keys)).then((list) => list.map(toBytes)),
    async set(key, value, ttlMs, opts) {
      const data = typeof value === "string" ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      if (ttlMs === undefined) {
        const reply = await run(() => (opts?.nx ? client.set(key, data, "NX") : client.set(key, data)));
        return reply === "OK";
      }
      const ttl = Math.max(1, Math.ceil(ttlMs));
      const reply = await run(() => (opts?.nx ? client.set(key, data, "PX", ttl, "NX") : client.set(key, data, "PX", ttl)));
      return reply === "OK";
    },
    async countWindows(keys, limits, ttlsMs) {
      const reply = (await run(() =>
        client.eval(COUNT_WINDOWS, keys.length, ...keys, ...limits, ...ttlsMs.map((t) => Math.max(1, Math.ceil(t)))),
      )) as number[];
      return { counts: reply.slice(0, keys.length).map(Number), blocked: reply[keys.length] === 1 };
    },
    deleteIfEquals: (key, value) => run(() => client.eval(DELETE_IF_EQUALS, 1, key, value)).then((n) => n === 1),
    publish: (channel, message) => run(() => client.publish(channel, message)).then(() => undefined),
    async subscribe(channel, onMessage) {
      if (!subscriber) {
        // A subscribed connection can do nothing else; it keeps trying in the background like the main one.
        subscriber = client.duplicate({ enableOfflineQueue: true, commandTimeout: undefined, autoResubscribe: true });
        subscriber.on("error", () => {});
        subscriber.on("message", (ch: string, message: string) => handlers.get(ch)?.(message));
      }
      handlers.set(channel, onMessage);
      // Queued until connected (offline queue on for this connection only): never rejects for a down Redis.
      subscriber.subscribe(channel).catch(() => {});
    },
    async scan(pattern) {
      const keys: string[] = [];
      let cursor = "0";
      do {
        const [next, batch] = await run(() => client.scan(cursor, "MATCH", pattern, "COUNT", 1000));
        cursor = next;
        keys.push(...batch);
      } while (cursor !== "0");
      return keys;
    },
    async close() {
      closed = true;
      if (probing) clearTimeout(probing);
      client.disconnect();
      subscriber?.disconnect();
    },
  };
}
