/**
 * Which plugin instances run for a request, in Kong's precedence, and the chain that runs them.
 * For each plugin name the most specific configured entry applies:
 * consumer + route + service > consumer + route > consumer + service > route + service >
 * consumer > route > service > global; then plugins run by descending priority.
 *
 * The consumer is known only once an authentication plugin ran, so a route whose plugins include
 * consumer-scoped entries resolves each plugin when its turn comes, with the consumer known by
 * then (as Kong's access phase does); every other route keeps a chain fixed at start.
 */
import type { PluginEntry } from "../config/schema.ts";
import type { Consumer, ConsumerDirectory } from "../plugins/consumers.ts";
import type { PluginInstance } from "../plugins/types.ts";
import type { RequestContext, PluginHandler } from "./context.ts";
import type { CompiledRoute } from "./router/router.ts";

type Handler = PluginHandler;
export type Chain = (c: RequestContext) => Promise<void>;

export interface ActivePlugin {
  readonly entry: PluginEntry;
  readonly priority: number;
  readonly instance: PluginInstance;
}

/** Kong's rank of an entry for `route` and `consumer`; -1 when it does not apply. */
function rank(entry: PluginEntry, route: CompiledRoute, consumer: Consumer | undefined, consumers: ConsumerDirectory | undefined): number {
  if (entry.route !== undefined && entry.route !== route.config.name) return -1;
  if (entry.service !== undefined && entry.service !== route.service.name) return -1;
  if (entry.consumer !== undefined && (consumer === undefined || consumers?.named(entry.consumer) !== consumer)) return -1;
  const r = entry.route !== undefined;
  const s = entry.service !== undefined;
  if (entry.consumer !== undefined) return r && s ? 7 : r ? 6 : s ? 5 : 3;
  return r && s ? 4 : r ? 2 : s ? 1 : 0;
}

/** The plugins for `route` (and `consumer`, once known), by descending priority. */
export function pluginsForRoute(
  route: CompiledRoute,
  active: readonly ActivePlugin[],
  consumer?: Consumer,
  consumers?: ConsumerDirectory,
): ActivePlugin[] {
  const chosen = new Map<string, { plugin: ActivePlugin; rank: number }>();
  for (const plugin of active) {
    const r = rank(plugin.entry, route, consumer, consumers);
    if (r < 0) continue;
    const current = chosen.get(plugin.entry.name);
    if (!current || r > current.rank) chosen.set(plugin.entry.name, { plugin, rank: r });
  }
  return [...chosen.values()].map((c) => c.plugin).sort((a, b) => b.priority - a.priority);
}

const noNext = async () => {};

/** Hono's message when a handler calls `next` a second time. */
export const NEXT_TWICE = "next() called multiple times";

/**
 * Hono-style middleware composition for a chain fixed at start: each handler gets a `next` that
 * runs the rest once (a second call rejects, as in Hono); a returned Response becomes `c.res`.
 */
export function compose(handlers: readonly Handler[]): Chain {
  return (c) => {
    let called = -1;
    const dispatch = async (i: number): Promise<void> => {
      if (i <= called) throw new Error(NEXT_TWICE);
      called = i;
      const handler = handlers[i];
      if (!handler) return;
      const res = await handler(c, () => dispatch(i + 1));
      if (res) c.res = res;
    };
    return dispatch(0);
  };
}

/** One plugin name's place in a consumer-dependent chain: its instance without a consumer, and per consumer. */
interface Slot {
  readonly base: Handler | undefined;
  readonly byConsumer: ReadonlyMap<Consumer, Handler | undefined>;
}

/** Whether any plugin entry may run on `route` (for some consumer or none). */
export function hasPlugins(route: CompiledRoute, active: readonly ActivePlugin[]): boolean {
  return active.some((p) => rank({ ...p.entry, consumer: undefined }, route, undefined, undefined) >= 0);
}

/** The chain of `route`: plugins then `proxy`. */
export function routeChain(route: CompiledRoute, active: readonly ActivePlugin[], consumers: ConsumerDirectory, proxy: Handler): Chain {
  const scoped = active.filter((p) => p.entry.consumer !== undefined && rank({ ...p.entry, consumer: undefined }, route, undefined, undefined) >= 0);
  if (scoped.length === 0) {
    const plugins = pluginsForRoute(route, active);
    // A route without plugins calls the proxy directly: no middleware chain to walk.
    if (plugins.length === 0) return (c) => proxy(c, noNext) as Promise<void>;
    return compose([...plugins.map((p) => p.instance.handler), proxy]);
  }
  // Every name that may run here, by priority; per consumer with scoped entries, which instance.
  const names = [...new Map(active.map((p) => [p.entry.name, p.priority])).entries()].sort((a, b) => b[1] - a[1]).map(([name]) => name);
  const targets = [...new Set(scoped.map((p) => consumers.named(p.entry.consumer!)).filter((c): c is Consumer => c !== undefined))];
  const pick = (list: readonly ActivePlugin[], name: string) => list.find((p) => p.entry.name === name)?.instance.handler;
  const base = pluginsForRoute(route, active);
  const perConsumer = new Map(targets.map((consumer) => [consumer, pluginsForRoute(route, active, consumer, consumers)]));
  const slots: Slot[] = names
    .map((name) => ({ base: pick(base, name), byConsumer: new Map(targets.map((consumer) => [consumer, pick(perConsumer.get(consumer)!, name)])) }))
    .filter((slot) => slot.base !== undefined || [...slot.byConsumer.values()].some((h) => h !== undefined));
  return (c) => {
    let called = -1;
    const dispatch = async (i: number): Promise<void> => {
      if (i <= called) throw new Error(NEXT_TWICE);
      called = i;
      const slot = slots[i];
      if (!slot) {
        await proxy(c, noNext);
        return;
      }
      const consumer = c.var.consumer;
      const handler = consumer !== undefined && slot.byConsumer.has(consumer) ? slot.byConsumer.get(consumer) : slot.base;
      if (!handler) return dispatch(i + 1);
      const res = await handler(c, () => dispatch(i + 1));
      if (res) c.res = res;
    };
    return dispatch(0);
  };
}
