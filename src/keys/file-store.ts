/**
 * The key store of one gateway: `[keys] jwks_file`, read at start and written (mode 0600, temp
 * file + rename) when keys are generated or rotated.
 *
 * - A missing file is not an error: keys are generated the first time something needs them (a
 *   plugin with `private_key_jwt` at start, the first `GET /openid-connect/jwks`), because RSA
 *   key generation costs up to a second and most gateways never sign anything.
 * - A file that exists but cannot be read or used is an error, and is never replaced.
 * - The file is watched: a rotation made by another process sharing it (`[server] workers`) is
 *   picked up within a moment; a change that breaks the file is logged and ignored.
 * - Writes are serialised, and every write starts from the keys in memory.
 */
import type { Logger } from "../log.ts";
import type { Runtime } from "../runtime/types.ts";
import { parseKeyFile, serializeKeyFile, type KeySet } from "./jwks-file.ts";
import { addKeyFor, endSigningDelay, generateKeySet, publishJwks, selectSigningKey, toSigningKey } from "./key-set.ts";
import { KeySetStore, type KeySettings } from "./set-store.ts";
import type { KeySelector, KeyStore, PublicJwks, RotateOptions, Rotation, SigningKey } from "./types.ts";
import { KeyStoreError } from "../errors.ts";

export interface FileKeyStoreOptions extends KeySettings {
  readonly runtime: Pick<Runtime, "readTextFile" | "writeFileAtomic" | "fileMode" | "watchFile">;
  /** `[keys] jwks_file`, resolved. */
  readonly file: string;
  readonly log: Logger;
  /** Follow changes other processes make to the file (default true). */
  readonly watch?: boolean;
}

const SETTING = "keys.jwks_file";
const FILE_MODE = 0o600;
const WATCH_DEBOUNCE_MS = 100;

const isNotFound = (error: unknown) => (error as { code?: unknown })?.code === "ENOENT" || (error as { name?: unknown })?.name === "NotFound";

export class FileKeyStore extends KeySetStore implements KeyStore {
  readonly description: string;
  private readonly options: FileKeyStoreOptions;
  /** The file text the keys in memory came from (or were written as). */
  private text: string | undefined;
  private opened = false;
  private unwatch: (() => void) | undefined;
  private watchTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(options: FileKeyStoreOptions) {
    super(options);
    this.options = options;
    this.description = `file "${options.file}"`;
  }

  async open(): Promise<void> {
    if (this.opened) return;
    this.opened = true;
    const read = await this.read();
    if (read) {
      await this.apply(read.set, read.text);
      const mode = await this.options.runtime.fileMode(this.options.file);
      if (mode !== undefined && (mode & 0o077) !== 0) {
        this.options.log.warn("keys.file_mode", {
          file: this.options.file,
          mode: mode.toString(8),
          detail: "the signing keys are readable by other users: chmod 600 the file",
        });
      }
      this.options.log.info("keys.loaded", { file: this.options.file, kids: this.kids(), retired: read.set.retired.length });
    }
    this.startWatching();
  }

  async signingKey(select: KeySelector): Promise<SigningKey> {
    const key = selectSigningKey(await this.ensure(), select, this.description, this.now());
    if (key) return key;
    // An algorithm no key has yet (e.g. `client_alg = "RS512"`): add one, keep the others.
    return this.exclusive(async () => {
      const existing = selectSigningKey(this.set!, select, this.description, this.now());
      if (existing) return existing;
      const { set, added } = await addKeyFor(this.set, select.alg);
      await this.write(set);
      this.options.log.info("keys.generated", { file: this.options.file, kids: [added.jwk.kid], algs: [select.alg] });
      return toSigningKey(added);
    });
  }

  rotate(options: RotateOptions = {}): Promise<Rotation> {
    return this.exclusive(async () => {
      const before = this.set ?? (await this.readOrNothing());
      const { set, rotation } = await this.rotated(before, options);
      await this.write(set);
      this.options.log.info("keys.rotated", {
        file: this.options.file,
        kids: rotation.kids,
        retired: rotation.retired,
        retired_until: new Date(rotation.retiredUntil).toISOString(),
        ...(set.signingDelayUntil ? { previous_signs_until: new Date(set.signingDelayUntil).toISOString() } : { immediate: true }),
      });
      return rotation;
    });
  }

  jwksServed(served: PublicJwks): void {
    if (!this.set || !endSigningDelay(this.set, this.now(), served)) return;
    void this.exclusive(async () => {
      const next = this.set && endSigningDelay(this.set, this.now(), served);
      if (!next) return;
      await this.write(next);
      this.options.log.info("keys.signing_switched", {
        file: this.options.file,
        kids: this.kids(),
        reason: "the JWKS was fetched after the rotation",
      });
    }).catch((error: unknown) => this.options.log.error("keys.write_failed", { file: this.options.file, detail: (error as Error).message }));
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.watchTimer);
    this.unwatch?.();
    this.unwatch = undefined;
  }

  private kids(): string[] {
    return this.set?.current.map((k) => k.jwk.kid) ?? [];
  }

  /** The keys, generated and written when there are none yet (once, whoever asks first). */
  protected async ensure(): Promise<KeySet> {
    if (this.set) return this.set;
    return this.exclusive(async () => {
      if (this.set) return this.set;
      // Another process sharing the file may have written it since we looked.
      const existing = await this.readOrNothing();
      if (existing) return this.set!;
      const algorithms = this.algorithms;
      const started = performance.now();
      await this.write(await generateKeySet(algorithms));
      this.options.log.info("keys.generated", {
        file: this.options.file,
        kids: this.kids(),
        algs: algorithms,
        generation_ms: Math.round(performance.now() - started),
      });
      return this.set!;
    });
  }

  /** Reads the file into memory if it exists; `undefined` if it does not. */
  private async readOrNothing(): Promise<KeySet | undefined> {
    const read = await this.read();
    if (!read) return undefined;
    if (read.text !== this.text) await this.apply(read.set, read.text);
    return this.set;
  }

  private async read(): Promise<{ set: KeySet; text: string } | undefined> {
    const file = this.options.file;
    let text: string;
    try {
      text = await this.options.runtime.readTextFile(file);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new KeyStoreError(SETTING, `cannot read "${file}" (${(error as Error).message})`, { cause: error });
    }
    try {
      return { set: await parseKeyFile(text), text };
    } catch (error) {
      throw new KeyStoreError(
        SETTING,
        `"${file}" is not a usable key file: ${(error as Error).message}. The gateway never replaces it: fix it, or move it away to have new keys generated`,
      );
    }
  }

  private async write(set: KeySet): Promise<void> {
    const text = serializeKeyFile(set, this.now());
    try {
      await this.options.runtime.writeFileAtomic(this.options.file, text, FILE_MODE);
    } catch (error) {
      throw new KeyStoreError(SETTING, `cannot write "${this.options.file}" (${(error as Error).message})`, { cause: error });
    }
    await this.apply(set, text);
    if (!this.unwatch) this.startWatching();
  }

  private async apply(set: KeySet, text: string): Promise<void> {
    // The JWKS first: a caller never sees the new signing key while the old set is published.
    const published = await publishJwks(set, this.now());
    this.set = set;
    this.text = text;
    this.published = published;
  }

  private startWatching(): void {
    if (this.options.watch === false || this.unwatch || this.closed) return;
    try {
      this.unwatch = this.options.runtime.watchFile(this.options.file, () => {
        clearTimeout(this.watchTimer);
        this.watchTimer = setTimeout(() => void this.reloadFromFile(), WATCH_DEBOUNCE_MS);
        (this.watchTimer as { unref?: () => void }).unref?.();
      });
    } catch {
      // The folder does not exist yet: watched from the first write on.
    }
  }

  /** Another process changed the file: adopt it if it is usable, keep ours otherwise. */
  private reloadFromFile(): Promise<void> {
    return this.exclusive(async () => {
      if (this.closed) return;
      try {
        const read = await this.read();
        if (!read || read.text === this.text) return;
        await this.apply(read.set, read.text);
        this.options.log.info("keys.reloaded", { file: this.options.file, kids: this.kids() });
      } catch (error) {
        this.options.log.error("keys.reload_failed", { file: this.options.file, detail: (error as Error).message });
      }
    });
  }
}
