/** `watch = true`: reload when gateway.toml changes, debounced so an editor's save is one reload. */
import type { Runtime } from "../runtime/types.ts";

export function watchConfig(runtime: Runtime, file: string, reload: () => void, debounceMs = 300): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return runtime.watchFile(file, () => {
    clearTimeout(timer);
    timer = setTimeout(reload, debounceMs);
  });
}
