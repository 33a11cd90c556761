/** Pieces shared by every plugin instance of one running gateway (issuer caches, cache sizes). */
export interface Shared {
  /** The value stored under `key`, created on first use. */
  once<T>(key: string, create: () => T): T;
}

export function createShared(): Shared {
  const values = new Map<string, unknown>();
  return {
    once<T>(key: string, create: () => T): T {
      if (!values.has(key)) values.set(key, create());
      return values.get(key) as T;
    },
  };
}
