/**
 * File-wide fixtures as constants: an object that reads through to what `current` returns once a
 * `beforeAll` has started it, so a suite writes `upstream.url` rather than a `let` assigned later.
 */
export function live<T extends object>(what: string, current: () => T | undefined): T {
  const target = (): T => {
    const value = current();
    if (!value) throw new Error(`${what} starts in beforeAll`);
    return value;
  };
  return new Proxy({} as T, {
    get(_, key) {
      const value = Reflect.get(target(), key);
      return typeof value === "function" ? value.bind(target()) : value;
    },
  });
}
