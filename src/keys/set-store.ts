/**
 * What every key store shares, wherever it keeps the keys (a file, the fleet's Redis): the key
 * set in memory and its published JWKS, changes made one at a time, and a rotation from the
 * `[keys]` settings. A store says how it gets the keys (`ensure`) and how it changes them.
 */
import { DEFAULT_ALGORITHMS, type SigningAlgorithm } from "./jwk.ts";
import type { KeySet } from "./jwks-file.ts";
import { previousSigningKey, publishJwks, rotateKeySet, type PublishedJwks } from "./key-set.ts";
import type { KeySelector, KeyStore, PublicJwks, RotateOptions, SigningKey } from "./types.ts";

export interface KeySettings {
  /** `[keys] rotation_grace` (s). */
  readonly rotationGrace: number;
  /** `[keys] rotation_signing_delay` (s; default 0: the new keys sign at once). */
  readonly rotationSigningDelay?: number;
  /** Algorithms of a generated key set (default `DEFAULT_ALGORITHMS`). */
  readonly algorithms?: readonly SigningAlgorithm[];
  readonly now?: () => number;
}

export abstract class KeySetStore implements Pick<KeyStore, "publicJwks" | "previousSigningKey"> {
  protected readonly now: () => number;
  protected readonly algorithms: readonly SigningAlgorithm[];
  protected set: KeySet | undefined;
  protected published: PublishedJwks | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly settings: KeySettings) {
    this.now = settings.now ?? Date.now;
    this.algorithms = settings.algorithms ?? DEFAULT_ALGORITHMS;
  }

  /** The keys: those in memory, else the store's, else generated (once, whoever asks first). */
  protected abstract ensure(): Promise<KeySet>;

  async publicJwks(): Promise<PublicJwks> {
    await this.ensure();
    if (!this.published || this.now() >= this.published.until) await this.publish();
    return this.published!.jwks;
  }

  async previousSigningKey(select: KeySelector): Promise<SigningKey | undefined> {
    return previousSigningKey(await this.ensure(), select.alg, this.now());
  }

  /** Serialises the public JWKS once per change (and when a retired key's time is up). */
  protected async publish(): Promise<void> {
    const set = this.set;
    if (!set) return;
    this.published = await publishJwks(set, this.now());
  }

  /** `before` rotated with the store's `[keys]` settings. */
  protected rotated(before: KeySet | undefined, options: RotateOptions): ReturnType<typeof rotateKeySet> {
    return rotateKeySet(before, {
      algorithms: this.algorithms,
      graceMs: this.settings.rotationGrace * 1000,
      signingDelayMs: (this.settings.rotationSigningDelay ?? 0) * 1000,
      now: this.now(),
      immediate: options.immediate,
    });
  }

  /** Runs `run` after every change queued before it: one change at a time, each from the latest keys. */
  protected exclusive<T>(run: () => Promise<T>): Promise<T> {
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => {});
    return next;
  }
}
