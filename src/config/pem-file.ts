/** PEM files named in the config, read at start: an unreadable file is a start error naming its key. */
import { ConfigError } from "../errors.ts";
import type { Runtime } from "../runtime/types.ts";

/**
 * The text of `file`, set at config key `key` (e.g. `server.tls.cert`). With `kind`, a file
 * without such a PEM block is a start error too.
 */
export async function readPemFile(
  runtime: Pick<Runtime, "readTextFile">,
  file: string,
  key: string,
  kind?: "CERTIFICATE" | "PRIVATE KEY",
): Promise<string> {
  let text: string;
  try {
    text = await runtime.readTextFile(file);
  } catch (error) {
    throw new ConfigError(`${key}: cannot read "${file}" (${(error as Error).message})`);
  }
  if (kind && !new RegExp(`-----BEGIN [A-Z ]*${kind}-----`).test(text)) throw new ConfigError(`${key}: "${file}" holds no PEM ${kind.toLowerCase()}`);
  return text;
}
