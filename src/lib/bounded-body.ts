/**
 * Reading a body with a size bound: what we parse from callers and IdPs (credentials in a form,
 * discovery documents, JWKS) never costs more memory than we chose. What was read from a
 * caller's body can be handed on to the upstream whole (`replayStream`, `streamOf`).
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

/**
 * The whole body again after `readUpTo` stopped past its limit: the chunks it read, then the
 * rest from `reader` as the consumer pulls (cancelling the stream cancels the reader).
 */
export function replayStream(chunks: Uint8Array[], reader: ReadableStreamDefaultReader<Uint8Array>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      const next = chunks.shift();
      if (next) return controller.enqueue(next);
      const { done, value } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
}

/** A body stream of `bytes`. */
export function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new Response(bytes as BodyInit).body!;
}
