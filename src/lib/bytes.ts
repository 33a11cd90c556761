/** Byte helpers shared by the body readers, the WebSocket relay and the HTTP client. */

/** The chunks as one array; pass `size` when the caller has already summed their lengths. */
export function concatBytes(chunks: readonly Uint8Array[], size = chunks.reduce((n, c) => n + c.byteLength, 0)): Uint8Array {
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.byteLength;
  }
  return all;
}
