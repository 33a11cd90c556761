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
 */
import type { Logger } from "../log.ts";
import { DEFAULT_ALGORITHMS, publicView, type SigningAlgorithm } from "../keys/jwk.ts";
import { parseKeyFile, serializeKeyFile, type KeySet, type RetiredKey } from "../keys/jwks-file.ts";
import { base64url, generateKey, publishJwks, toSigningKey, type PublishedJwks } from "../keys/key-set.ts";
import { KeyStoreError, type KeySelector, type KeyStore, type PublicJwks, type Rotation, type SigningKey } from "../keys/types.ts";
import type { Runtime } from "../runtime/types.ts";
import type { ClusterHealth } from "./health.ts";
import type { RedisLink } from "./redis.ts";
import type { Sealer } from "./seal.ts";

export interface RedisKeyStoreOptions {
  readonly link: RedisLink;
  readonly sealer: Sealer;
  readonly health: ClusterHealth;
  readonly log: Logger;
  /** `key_prefix`. */
  readonly prefix: string;
  /** `[keys] rotation_grace` (s). */
  readonly rotationGrace: number;
  /** `[keys] jwks_file`: the local copy. */
  readonly file: string;
  readonly runtime: Pick<Runtime, "readTextFile" | "writeFileAtomic">;
  readonly algorithms?: readonly SigningAlgorithm[];
  readonly now?: () => number;
  /** How often the version is polled (ms). */
  readonly pollMs?: number;
}

export const POLL_MS = 500;
/** Generating six keys (two RSA) takes up to a second or two on a slow machine. */
const LOCK_MS = 30_000;
const WAIT_MS = 30_000;
const SETTING = "cluster.items";

interface Stored {
  readonly version: number;
  readonly file: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class RedisKeyStore implements KeyStore {
  readonly description: string;
  private readonly o: RedisKeyStoreOptions;
  private readonly now: () => number;
  private readonly setKey: string;
  private readonly versionKey: string;
  private readonly lockKey: string;
  private readonly channel: string;
  private set: KeySet | undefined;
  private version = 0;
  private published: PublishedJwks | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private timer: ReturnType<typeof setInterval> | undefined;
  private closed = false;

  constructor(options: RedisKeyStoreOptions) {
    this.o = options;
    this.now = options.now ?? Date.now;
    this.setKey = `${options.prefix}keys:set`;
    this.versionKey = `${options.prefix}keys:version`;
    this.lockKey = `${options.prefix}keys:lock`;
    this.channel = `${options.prefix}keys:changed`;
    this.description = `the fleet's redis (local copy "${options.file}")`;
  }

  async open(): Promise<void> {
    if (this.o.link.available) {
      try {
        await this.sync();
      } catch (error) {
        this.o.log.warn("keys.sync_failed", { detail: (error as Error).message });
      }
    }
    if (!this.set) await this.readLocal();
    await this.o.link.subscribe(this.channel, () => void this.sync().catch(() => {}));
    const poll = this.o.pollMs ?? POLL_MS;
    this.timer = setInterval(() => {
      if (this.o.link.available) void this.sync().catch(() => {});
    }, poll);
    (this.timer as { unref?: () => void }).unref?.();
  }

  async signingKey(select: KeySelector): Promise<SigningKey> {
    const set = await this.ensure();
    if (select.kid !== undefined) {
      const key = set.current.find((k) => k.jwk.kid === select.kid);
      if (!key) throw new KeyStoreError("client_jwk", `no current key with "kid" "${select.kid}" in ${this.description}`);
      if (key.jwk.alg !== select.alg) throw new KeyStoreError("client_alg", `the key "${select.kid}" is a ${key.jwk.alg} key, not ${select.alg}`);
      return toSigningKey(key);
    }
    const key = set.current.find((k) => k.jwk.alg === select.alg);
    if (key) return toSigningKey(key);
    // An algorithm no key has yet: added for the whole fleet, from the latest set.
    return this.change("keys.generated", async (latest) => {
      const existing = latest?.current.find((k) => k.jwk.alg === select.alg);
      if (existing) return undefined;
      const added = await generateKey(select.alg);
      return { current: [...(latest?.current ?? []), added], retired: latest?.retired ?? [] };
    }).then((set) => toSigningKey(set.current.find((k) => k.jwk.alg === select.alg)!));
  }

  async publicJwks(): Promise<PublicJwks> {
    await this.ensure();
    if (!this.published || this.now() >= this.published.until) await this.publish();
    return this.published!.jwks;
  }

  async rotate(): Promise<Rotation> {
    let rotation: Rotation | undefined;
    await this.change("keys.rotated", async (before) => {
      const now = this.now();
      const algs = before ? [...new Set(before.current.map((k) => k.jwk.alg))] : [...(this.o.algorithms ?? DEFAULT_ALGORITHMS)];
      const current = await Promise.all(algs.map(generateKey));
      const retiredUntil = now + this.o.rotationGrace * 1000;
      const retiring: RetiredKey[] = (before?.current ?? []).map((k) => ({ jwk: publicView(k.jwk) as RetiredKey["jwk"], until: retiredUntil }));
      rotation = { kids: current.map((k) => k.jwk.kid), retired: retiring.map((r) => r.jwk.kid), retiredUntil };
      return { current, retired: [...(before?.retired ?? []).filter((r) => r.until > now), ...retiring] };
    });
    return rotation!;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
  }

  /** The keys in memory; else the fleet's; else generated for the fleet (once, by whoever locks first). */
  private async ensure(): Promise<KeySet> {
    if (this.set) return this.set;
    if (!this.o.link.available) throw this.unreachable("no signing keys are known yet");
    await this.sync();
    if (this.set) return this.set;
    return this.change("keys.generated", async (latest) => (latest ? undefined : { current: await Promise.all((this.o.algorithms ?? DEFAULT_ALGORITHMS).map(generateKey)), retired: [] }));
  }

  /**
   * Applies `make` to the latest set in Redis under the fleet's lock, stores and announces the
   * result (`undefined`: nothing to change). Waits for another node's lock to go away first.
   */
  private change(event: string, make: (latest: KeySet | undefined) => Promise<KeySet | undefined>): Promise<KeySet> {
    return this.exclusive(async () => {
      const { link } = this.o;
      if (!link.available) throw this.unreachable("the signing keys cannot be changed");
      const owner = base64url(crypto.getRandomValues(new Uint8Array(16)));
      const deadline = this.now() + WAIT_MS;
      while (!(await link.set(this.lockKey, owner, LOCK_MS, { nx: true }))) {
        if (this.now() > deadline) throw new KeyStoreError(SETTING, "another gateway holds the fleet's key lock for too long");
        await sleep(50);
      }
      try {
        const latest = await this.load();
        const next = await make(latest?.set);
        if (!next) {
          if (latest) await this.apply(latest.set, latest.stored);
          return this.set!;
        }
        const version = Math.max(latest?.stored.version ?? 0, this.version) + 1;
        const stored: Stored = { version, file: serializeKeyFile(next, this.now()) };
        await link.set(this.setKey, await this.o.sealer.seal(JSON.stringify(stored), this.setKey), undefined);
        await link.set(this.versionKey, String(version), undefined);
        await this.apply(await parseKeyFile(stored.file), stored);
        await link.publish(this.channel, String(version)).catch(() => {});
        this.o.log.info(event, { store: "redis", version, kids: this.set!.current.map((k) => k.jwk.kid) });
        return this.set!;
      } finally {
        await link.deleteIfEquals(this.lockKey, owner).catch(() => {});
      }
    });
  }

  /** Adopts the fleet's set when its version differs from ours (a cheap version read first). */
  private async sync(): Promise<void> {
    if (this.closed) return;
    const raw = await this.o.link.get(this.versionKey);
    const version = raw ? Number(new TextDecoder().decode(raw)) : 0;
    if (this.set && version === this.version) return;
    const latest = await this.load();
    if (!latest || latest.stored.version === this.version) return;
    await this.exclusive(async () => {
      if (latest.stored.version <= this.version && this.set) return;
      const before = this.set?.current.map((k) => k.jwk.kid).join(" ");
      await this.apply(latest.set, latest.stored);
      if (before !== undefined) this.o.log.info("keys.reloaded", { store: "redis", version: latest.stored.version, kids: this.set!.current.map((k) => k.jwk.kid) });
    });
  }

  private async load(): Promise<{ set: KeySet; stored: Stored } | undefined> {
    const sealed = await this.o.link.get(this.setKey);
    if (!sealed) return undefined;
    const text = await this.o.sealer.open(sealed, this.setKey);
    if (text === undefined) {
      throw new KeyStoreError("cluster.keys_secret", "the fleet's signing keys in redis do not open with this gateway's 'keys_secret': it must be equal on every node");
    }
    const stored = JSON.parse(text) as Stored;
    return { set: await parseKeyFile(stored.file), stored };
  }

  private async apply(set: KeySet, stored: Stored): Promise<void> {
    const changed = stored.version !== this.version || !this.set;
    this.set = set;
    this.version = stored.version;
    await this.publish();
    if (changed) {
      await this.o.runtime.writeFileAtomic(this.o.file, stored.file, 0o600).catch((error: unknown) => {
        this.o.log.warn("keys.local_copy_failed", { file: this.o.file, detail: (error as Error).message });
      });
    }
  }

  /** The local copy, when Redis is unreachable at start. */
  private async readLocal(): Promise<void> {
    let text: string;
    try {
      text = await this.o.runtime.readTextFile(this.o.file);
    } catch {
      return;
    }
    try {
      this.set = await parseKeyFile(text);
      this.version = 0; // adopt whatever Redis holds once it answers
      await this.publish();
      this.o.log.warn("keys.local_copy_used", { file: this.o.file, detail: "redis is unreachable: signing with the last keys seen until it answers" });
    } catch (error) {
      this.o.log.warn("keys.local_copy_invalid", { file: this.o.file, detail: (error as Error).message });
    }
  }

  private async publish(): Promise<void> {
    const set = this.set;
    if (!set) return;
    this.published = await publishJwks(set, this.now());
  }

  private unreachable(what: string): KeyStoreError {
    return new KeyStoreError(SETTING, `${what}: the fleet's redis is unreachable (${this.o.health.reason ?? "unknown"})`);
  }

  private exclusive<T>(run: () => Promise<T>): Promise<T> {
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => {});
    return next;
  }
}
