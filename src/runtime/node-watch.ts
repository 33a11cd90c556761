/**
 * File watching through `node:fs`, which Bun and Deno both provide. The folder is watched,
 * not the file: editors often save by writing a new file and renaming it over the old one.
 */
import { existsSync, watch } from "node:fs";
import { basename, dirname } from "node:path";

/**
 * Throws when the folder does not exist (callers decide whether that matters). Errors after
 * the start end the watch instead of the process: Deno reports them asynchronously, on the
 * watcher, where an unhandled one would be fatal.
 */
export function watchFile(path: string, onChange: () => void): () => void {
  const name = basename(path);
  const folder = dirname(path);
  if (!existsSync(folder)) throw new Error(`cannot watch "${path}": its folder does not exist`);
  const watcher = watch(folder, (_event, changed) => {
    if (!changed || changed.toString() === name) onChange();
  });
  watcher.on("error", () => watcher.close());
  return () => watcher.close();
}
