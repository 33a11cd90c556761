/**
 * File watching through `node:fs`, which Bun and Deno both provide. The folder is watched,
 * not the file: editors often save by writing a new file and renaming it over the old one.
 */
import { watch } from "node:fs";
import { basename, dirname } from "node:path";

export function watchFile(path: string, onChange: () => void): () => void {
  const name = basename(path);
  const watcher = watch(dirname(path), (_event, changed) => {
    if (!changed || changed.toString() === name) onChange();
  });
  return () => watcher.close();
}
