/**
 * The fleet's signing keys (`[cluster] items` with `keys`): one key set for every gateway, kept
 * in Redis sealed under a key derived from `[cluster] keys_secret`, so every node signs client
 * assertions with the same current key and publishes the same JWKS.
 *
 * - `<prefix>keys:set`: the sealed key file (the `[keys] jwks_file` format, src/keys/jwks-file.ts)
 *   and its version; `<prefix>keys:version`: the version in clear, for cheap polling.
 * - Generation and rotation run under a short lock (`<prefix>keys:lock`), from the latest set in
 *   Redis, so two nodes never generate or rotate over each other.
 * - A change is published on `<prefix>keys:changed`; every node also polls the version each
 *   `POLL_MS`, so a node that missed the message (reconnecting) catches up within a second.
 * - The last set seen is also written to `[keys] jwks_file` (0600): a node that restarts while
 *   Redis is down still signs with the fleet's keys. Rotating needs Redis (a rotation that
 *   reached only some nodes would split the fleet), and is refused while it is unreachable.
 * - One set from the first second: a node that finds Redis empty at start seeds it with its
 *   `jwks_file` when it has one (under the lock: whoever is first); a node that published its
 *   file's keys while Redis was unreachable hands them to the fleet's set as retired keys, so no
 *   key an IdP may have cached disappears without its grace period.
 */
import type { Logger } from "../log.ts";
import { parseKeyFile, serializeKeyFile, type KeySet } from "../keys/jwks-file.ts";
import { addKeyFor, adoptUnknownKeys, endSigningDelay, generateKeySet, publishJwks, selectSigningKey } from "../keys/key-set.ts";
import { KeySetStore, type KeySettings } from "../keys/set-store.ts";
import type { KeySelector, KeyStore, PublicJwks, RotateOptions, Rotation, SigningKey } from "../keys/types.ts";
import type { Runtime } from "../runtime/types.ts";
import type { ClusterHealth } from "./health.ts";
import type { RedisLink } from "./redis.ts";
import type { Sealer } from "./seal.ts";
import { base64url } from "../lib/base64url.ts";
import { KeyStoreError, KeyStoreUnavailableError, RedisUnavailableError } from "../errors.ts";

export interface RedisKeyStoreOptions extends KeySettings {
  readonly link: RedisLink;
  readonly sealer: Sealer;
  readonly health: ClusterHealth;
  readonly log: Logger;
  /** `key_prefix`. */
  readonly prefix: string;
  /** `[keys] jwks_file`: the local copy. */
  readonly file: string;
  readonly runtime: Pick<Runtime, "readTextFile" | "writeFileAtomic">;
  /** How often the version is polled (ms). */
  readonly pollMs?: number;
}

const POLL_MS = 500;
/** Generating six keys (two RSA) takes up to a second or two on a slow machine. */
const LOCK_MS = 30_000;
const WAIT_MS = 30_000;
const SETTING = "cluster.items";

interface Stored {
  readonly version: number;
  readonly file: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class RedisKeyStore extends KeySetStore implements KeyStore {
  readonly description: string;
  private readonly o: RedisKeyStoreOptions;
  private readonly setKey: string;
  private readonly versionKey: string;
  private readonly lockKey: string;
  private readonly channel: string;
  private version = 0;
  /** The keys in memory came from the local copy and are not (yet) the fleet's. */
  private local = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(options: RedisKeyStoreOptions) {
    super(options);
    this.o = options;
    this.setKey = `${options.prefix}keys:set`;
    this.versionKey = `${options.prefix}keys:version`;
    this.lockKey = `${options.prefix}keys:lock`;
    this.channel = `${options.prefix}keys:changed`;
    this.description = `the fleet's redis (local copy "${options.file}")`;
  }

  async open(): Promise<void> {
    const local = await this.readLocal();
    if (local) {
      this.set = local;
      this.local = true;
      await this.publish();
    }
    if (this.o.link.available) {
      try {
        // The fleet's set if there is one; else ours (the local file) becomes it.
        await this.change("keys.seeded", async () => undefined);
      } catch (error) {
        this.o.log.warn("keys.sync_failed", { detail: (error as Error).message });
      }
    }
    if (this.local) {
      this.o.log.warn("keys.local_copy_used", {
        file: this.o.file,
        detail: `redis is unreachable (${this.o.health.reason ?? "unknown"}): signing with the last keys seen until it answers`,
      });
    }
    await this.o.link.subscribe(this.channel, () => void this.sync().catch(() => {}));
    const poll = this.o.pollMs ?? POLL_MS;
    this.timer = setInterval(() => {
      if (this.o.link.available) void this.sync().catch(() => {});
    }, poll);
    (this.timer as { unref?: () => void }).unref?.();
  }

  async signingKey(select: KeySelector): Promise<SigningKey> {
    const key = selectSigningKey(await this.ensure(), select, this.description, this.now());
    if (key) return key;
    // An algorithm no key has yet: added for the whole fleet, from the latest set.
    const set = await this.change("keys.generated", async (latest) =>
      latest && selectSigningKey(latest, select, this.description, this.now()) ? undefined : (await addKeyFor(latest, select.alg)).set,
    );
    return selectSigningKey(set!, select, this.description, this.now())!;
  }

  async rotate(options: RotateOptions = {}): Promise<Rotation> {
    let rotation: Rotation | undefined;
    await this.change("keys.rotated", async (before) => {
      const rotated = await this.rotated(before, options);
      rotation = rotated.rotation;
      return rotated.set;
    });
    return rotation!;
  }

  /** Served by any node: the whole fleet switches to the new keys (a changed set, announced as usual). */
  jwksServed(served: PublicJwks): void {
    if (!this.set || !endSigningDelay(this.set, this.now(), served) || !this.o.link.available) return;
    void this.change("keys.signing_switched", async (latest) => (latest ? endSigningDelay(latest, this.now(), served) : undefined)).catch(
      (error: unknown) => this.o.log.warn("keys.sync_failed", { detail: (error as Error).message }),
    );
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
  }

  /** The keys in memory; else the fleet's; else generated for the fleet (once, by whoever locks first). */
  protected async ensure(): Promise<KeySet> {
    if (this.set) return this.set;
    if (!this.o.link.available) throw this.unreachable("no signing keys are known yet");
    await this.sync();
    if (this.set) return this.set;
    const set = await this.change("keys.generated", async (latest) => (latest ? undefined : generateKeySet(this.algorithms)));
    return set!;
  }

  /**
   * Applies `make` to the latest set (the fleet's, else the one in memory) under the fleet's lock,
   * stores and announces the result. `make` answering `undefined` changes nothing: the fleet's set
   * is adopted, or the one in memory seeds an empty Redis.
   */
  private change(event: string, make: (latest: KeySet | undefined) => Promise<KeySet | undefined>): Promise<KeySet | undefined> {
    return this.exclusive(async () => {
      const { link } = this.o;
      if (!link.available) throw this.unreachable("the signing keys cannot be changed");
      try {
        const owner = base64url(crypto.getRandomValues(new Uint8Array(16)));
        const deadline = this.now() + WAIT_MS;
        while (!(await this.redis(link.set(this.lockKey, owner, LOCK_MS, { nx: true })))) {
          if (this.now() > deadline) throw new KeyStoreError(SETTING, "another gateway holds the fleet's key lock for too long");
          await sleep(50);
        }
        try {
          const latest = await this.load();
          const base = latest?.set ?? this.set;
          const next = await make(base);
          if (!next && latest) {
            await this.apply(latest.set, latest.stored);
            return this.set;
          }
          const stored = next ?? base;
          if (!stored) return undefined;
          // Epoch ms when it is larger: a Redis that restarted empty never sees an old version again.
          const version = Math.max(latest?.stored.version ?? 0, this.version, this.now() - 1) + 1;
          await this.store(stored, version, event);
          return this.set;
        } finally {
          await link.deleteIfEquals(this.lockKey, owner).catch(() => {});
        }
      } catch (error) {
        if (error instanceof KeyStoreUnavailableError) throw this.unreachable("the signing keys cannot be changed", error.cause);
        throw error;
      }
    });
  }

  /** A Redis command whose failure (down, timed out, connection dropped mid-command) means "unreachable". */
  private async redis<T>(command: Promise<T>): Promise<T> {
    try {
      return await command;
    } catch (error) {
      throw this.unreachable(error instanceof RedisUnavailableError ? "redis is down" : "a redis command failed", error);
    }
  }

  private async store(set: KeySet, version: number, event: string): Promise<void> {
    const { link } = this.o;
    const stored: Stored = { version, file: serializeKeyFile(set, this.now()) };
    const sealed = await this.o.sealer.seal(JSON.stringify(stored), this.setKey);
    await this.redis(link.set(this.setKey, sealed, undefined));
    await this.redis(link.set(this.versionKey, String(version), undefined));
    await this.apply(await parseKeyFile(stored.file), stored);
    await link.publish(this.channel, String(version)).catch(() => {});
    this.o.log.info(event, { store: "redis", version, kids: this.set!.current.map((k) => k.jwk.kid) });
  }

  /**
   * Adopts the fleet's set when its version differs from ours (a cheap version read first). Keys
   * we publish that the fleet's set does not know (a local copy used while Redis was unreachable,
   * a set Redis lost when it restarted empty) join it as retired keys first: none disappears
   * without its grace period. An empty Redis gets our set again.
   */
  private async sync(): Promise<void> {
    if (this.closed) return;
    const raw = await this.o.link.get(this.versionKey);
    const version = raw ? Number(new TextDecoder().decode(raw)) : 0;
    if (this.set && !this.local && version === this.version) return;
    const latest = version === 0 ? undefined : await this.load();
    const ours = this.set;
    if (ours && (!latest || this.unknownTo(latest.set))) {
      const until = this.now() + this.o.rotationGrace * 1000;
      await this.change(latest ? "keys.merged" : "keys.seeded", async (fleet) => (fleet ? adoptUnknownKeys(fleet, ours, until) : undefined));
      return;
    }
    if (!latest || latest.stored.version === this.version) return;
    await this.exclusive(async () => {
      if (latest.stored.version <= this.version && this.set) return; // a newer set arrived meanwhile
      const before = this.set?.current.map((k) => k.jwk.kid).join(" ");
      await this.apply(latest.set, latest.stored);
      if (before !== undefined)
        this.o.log.info("keys.reloaded", { store: "redis", version: latest.stored.version, kids: this.set!.current.map((k) => k.jwk.kid) });
    });
  }

  /** Whether `fleet` lacks one of the current keys we publish. */
  private unknownTo(fleet: KeySet): boolean {
    return adoptUnknownKeys(fleet, this.set!, 0) !== undefined;
  }

  private async load(): Promise<{ set: KeySet; stored: Stored } | undefined> {
    const sealed = await this.redis(this.o.link.get(this.setKey));
    if (!sealed) return undefined;
    const text = await this.o.sealer.open(sealed, this.setKey);
    if (text === undefined) {
      throw new KeyStoreError(
        "cluster.keys_secret",
        "the fleet's signing keys in redis do not open with this gateway's 'keys_secret': it must be equal on every node",
      );
    }
    const stored = JSON.parse(text) as Stored;
    return { set: await parseKeyFile(stored.file), stored };
  }

  private async apply(set: KeySet, stored: Stored): Promise<void> {
    const changed = stored.version !== this.version || !this.set || this.local;
    // The JWKS first: a caller never sees the new signing key while the old set is published.
    const published = await publishJwks(set, this.now());
    this.set = set;
    this.published = published;
    this.version = stored.version;
    this.local = false;
    if (changed) {
      await this.o.runtime.writeFileAtomic(this.o.file, stored.file, 0o600).catch((error: unknown) => {
        this.o.log.warn("keys.local_copy_failed", { file: this.o.file, detail: (error as Error).message });
      });
    }
  }

  /** The local copy (`[keys] jwks_file`), if there is a usable one. */
  private async readLocal(): Promise<KeySet | undefined> {
    let text: string;
    try {
      text = await this.o.runtime.readTextFile(this.o.file);
    } catch {
      return undefined;
    }
    try {
      return await parseKeyFile(text);
    } catch (error) {
      this.o.log.warn("keys.local_copy_invalid", { file: this.o.file, detail: (error as Error).message });
      return undefined;
    }
  }

  private unreachable(what: string, cause?: unknown): KeyStoreUnavailableError {
    return new KeyStoreUnavailableError(`${what}: the fleet's redis is unreachable (${this.o.health.reason ?? "unknown"})`, { cause });
  }
}
