/**
 * The consumers of one config (`[[consumers]]`), looked up by id, username or custom_id: what
 * authentication plugins map callers to, and what `acl` and `rate-limiting` read. Built once per
 * config; a reload builds a new one.
 */
import type { ConsumerConfig } from "../config/schema.ts";

export interface Consumer {
  readonly id: string;
  readonly username: string | undefined;
  readonly custom_id: string | undefined;
  readonly tags: readonly string[];
  /** ACL groups (`acl` plugin). */
  readonly groups: readonly string[];
  /** `X-Consumer-Groups`: the groups joined by ", " as Kong sends them. */
  readonly groupsHeader: string;
  /** The name the access log and errors give it: username, else custom_id. */
  readonly name: string;
}

/** Kong's `consumer_by` fields. */
export type ConsumerField = "id" | "username" | "custom_id";

export interface ConsumerDirectory {
  readonly size: number;
  /** The consumer whose `by` fields (tried in order) equal `value`. */
  find(value: string, by: readonly ConsumerField[]): Consumer | undefined;
  /** By username, else custom_id, else id: how plugin entries and `anonymous` name a consumer. */
  named(name: string): Consumer | undefined;
}

/** A UUID (version 5 layout) from SHA-1 of the name: the same consumer has the same id on every gateway. */
async function derivedId(name: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-1", new TextEncoder().encode(`oidc-gateway consumer ${name}`)));
  digest[6] = (digest[6]! & 0x0f) | 0x50;
  digest[8] = (digest[8]! & 0x3f) | 0x80;
  const hex = [...digest.subarray(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export async function createConsumerDirectory(configs: readonly ConsumerConfig[]): Promise<ConsumerDirectory> {
  const fields: Record<ConsumerField, Map<string, Consumer>> = { id: new Map(), username: new Map(), custom_id: new Map() };
  for (const config of configs) {
    const name = (config.username ?? config.custom_id)!;
    const consumer: Consumer = {
      id: config.id ?? (await derivedId(config.username !== undefined ? `username:${config.username}` : `custom_id:${config.custom_id}`)),
      username: config.username,
      custom_id: config.custom_id,
      tags: config.tags,
      groups: config.groups,
      groupsHeader: config.groups.join(", "),
      name,
    };
    fields.id.set(consumer.id, consumer);
    if (consumer.username !== undefined) fields.username.set(consumer.username, consumer);
    if (consumer.custom_id !== undefined) fields.custom_id.set(consumer.custom_id, consumer);
  }
  const find = (value: string, by: readonly ConsumerField[]) => {
    for (const field of by) {
      const found = fields[field].get(value);
      if (found) return found;
    }
    return undefined;
  };
  return {
    size: configs.length,
    find,
    named: (name) => find(name, ["username", "custom_id", "id"]),
  };
}

/** Sets Kong's consumer headers upstream (the caller's copies were dropped by the core, gateway/headers.ts). */
export function setConsumerHeaders(headers: Headers, consumer: Consumer): void {
  headers.set("x-consumer-id", consumer.id);
  if (consumer.custom_id !== undefined) headers.set("x-consumer-custom-id", consumer.custom_id);
  if (consumer.username !== undefined) headers.set("x-consumer-username", consumer.username);
}
