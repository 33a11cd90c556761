/**
 * The key store of a running gateway: created once per process at start (it outlives config
 * reloads, as the metrics do), and the bridge from `KeyStoreError` to the start error that
 * names the config key.
 */
import { ConfigError, KeyStoreError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Runtime } from "../runtime/types.ts";
import { FileKeyStore } from "./file-store.ts";
import type { KeysConfig } from "../config/keys.ts";
import type { KeyStore } from "./types.ts";

export type { KeyStore } from "./types.ts";

/** A `KeyStoreError` as the start error `check`/`serve` print (`<where>: <key>: <problem>`); others unchanged. */
function keyStoreStartError(error: unknown, where?: string): unknown {
  if (!(error instanceof KeyStoreError)) return error;
  return new ConfigError(`${where ? `${where}: ` : ""}${error.setting}: ${error.message}`);
}

/** The file store of `[keys]`, opened: an unusable key file is a start error. */
export async function openKeyStore(runtime: Runtime, config: KeysConfig, log: Logger): Promise<KeyStore> {
  const store = new FileKeyStore({
    runtime,
    file: config.jwks_file,
    rotationGrace: config.rotation_grace,
    rotationSigningDelay: config.rotation_signing_delay,
    log: log.child({ component: "keys" }),
  });
  try {
    await store.open();
  } catch (error) {
    store.close();
    throw keyStoreStartError(error);
  }
  return store;
}
