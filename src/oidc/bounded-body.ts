/**
 * Reading a body with a size bound: what we parse from callers and IdPs (credentials in a form,
 * discovery documents, JWKS) never costs more memory than we chose.
 */

export interface BoundedRead {
  /** The chunks read, in order. */
  readonly chunks: Uint8Array[];
  readonly size: number;
  /** True when the whole body was read within the limit; false when it stopped past `limit`. */
  readonly complete: boolean;
}

/** Reads until the end or until more than `limit` bytes were read (the reader is left open). */
export async function readUpTo(reader: ReadableStreamDefaultReader<Uint8Array>, limit: number): Promise<BoundedRead> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { chunks, size, complete: true };
    chunks.push(value);
    size += value.byteLength;
    if (size > limit) return { chunks, size, complete: false };
  }
}

export function concatBytes(chunks: readonly Uint8Array[], size: number): Uint8Array {
  const all = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.byteLength;
  }
  return all;
}
