// @ts-check
/**
 * A tiny in-memory oidc-provider adapter (one store per IdP instance).
 *
 * oidc-provider's bundled MemoryAdapter is an LRU capped at 1000 entries (opaque
 * tokens of load tests would be evicted) and prints a warning on start; this one
 * is unbounded but honours expiry, and is private to one provider instance.
 */

/**
 * @typedef {{ payload: Record<string, any>, expiresAt: number }} Entry
 */

/**
 * @returns {(model: string) => MapAdapter} factory usable as oidc-provider's `adapter`
 */
export function createMapAdapterFactory() {
  /** @type {Map<string, Entry>} */
  const store = new Map();
  /** @type {Map<string, Set<string>>} grantId -> keys */
  const grants = new Map();
  const shared = { store, grants, writes: 0 };
  return (model) => new MapAdapter(model, shared);
}

class MapAdapter {
  /**
   * @param {string} model
   * @param {{ store: Map<string, Entry>, grants: Map<string, Set<string>>, writes: number }} shared
   */
  constructor(model, shared) {
    this.model = model;
    this.shared = shared;
  }

  /** @param {string} id */
  key(id) {
    return `${this.model}:${id}`;
  }

  /** @param {string} key */
  #get(key) {
    const entry = this.shared.store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.shared.store.delete(key);
      return undefined;
    }
    return entry.payload;
  }

  #prune() {
    this.shared.writes += 1;
    if (this.shared.writes % 500 !== 0) return;
    const now = Date.now();
    for (const [key, entry] of this.shared.store) {
      if (entry.expiresAt <= now) this.shared.store.delete(key);
    }
  }

  /**
   * @param {string} id
   * @param {Record<string, any>} payload
   * @param {number} [expiresIn] seconds
   */
  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    const expiresAt = typeof expiresIn === "number" ? Date.now() + expiresIn * 1000 : Infinity;
    this.shared.store.set(key, { payload, expiresAt });
    if (this.model === "Session" && payload.uid) {
      this.shared.store.set(`sessionUid:${payload.uid}`, { payload: { id }, expiresAt });
    }
    if (payload.userCode) {
      this.shared.store.set(`userCode:${payload.userCode}`, { payload: { id }, expiresAt });
    }
    if (payload.grantId) {
      let set = this.shared.grants.get(payload.grantId);
      if (!set) {
        set = new Set();
        this.shared.grants.set(payload.grantId, set);
      }
      set.add(key);
    }
    this.#prune();
  }

  /** @param {string} id */
  async find(id) {
    return this.#get(this.key(id));
  }

  /** @param {string} uid */
  async findByUid(uid) {
    const ref = this.#get(`sessionUid:${uid}`);
    return ref ? this.find(ref.id) : undefined;
  }

  /** @param {string} userCode */
  async findByUserCode(userCode) {
    const ref = this.#get(`userCode:${userCode}`);
    return ref ? this.find(ref.id) : undefined;
  }

  /** @param {string} id */
  async consume(id) {
    const payload = this.#get(this.key(id));
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  /** @param {string} id */
  async destroy(id) {
    this.shared.store.delete(this.key(id));
  }

  /** @param {string} grantId */
  async revokeByGrantId(grantId) {
    const keys = this.shared.grants.get(grantId);
    if (!keys) return;
    for (const key of keys) this.shared.store.delete(key);
    this.shared.grants.delete(grantId);
  }
}
