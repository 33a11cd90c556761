/**
 * Kong's consumer mapping of openid-connect: the claim at `consumer_claim` names a consumer by the
 * `consumer_by` fields, the claim at `credential_claim` identifies the credential, and `anonymous`
 * is the consumer of a caller that failed authentication. Kong's upstream headers say who it is.
 */
import { AuthError, type Challenge } from "../../errors.ts";
import type { RequestContext } from "../../gateway/context.ts";
import { setConsumerHeaders, type ConsumerField } from "../consumers.ts";
import { claimAt } from "./authz.ts";

export interface ConsumerSettings {
  readonly consumer_claim?: readonly string[] | undefined;
  readonly consumer_by: readonly ConsumerField[];
  readonly consumer_optional: boolean;
  readonly credential_claim: readonly string[];
  readonly anonymous?: string | undefined;
  readonly forbidden_error_message: string;
}

/** A claim usable as an identifier: a non-empty string a header can carry. */
const identifier = (value: unknown) =>
  typeof value === "string" && value.length > 0 && value.length <= 1024 && !/[\r\n\0]/.test(value) ? value : undefined;

export interface ConsumerMapping {
  /** Maps an authenticated caller; the refusal of one that maps to no consumer, or undefined. */
  authenticated(c: RequestContext, claims: Readonly<Record<string, unknown>> | undefined, challenges: readonly Challenge[]): AuthError | undefined;
  /** Makes the caller the `anonymous` consumer: false when there is none (the failure stands). */
  anonymous(c: RequestContext): boolean;
}

export function createConsumerMapping(settings: ConsumerSettings): ConsumerMapping {
  const claim = settings.consumer_claim;
  const ids = new WeakMap<object, { credential: string | undefined; consumer: string | undefined }>();
  const read = (claims: Readonly<Record<string, unknown>>) => {
    let found = ids.get(claims);
    if (!found) {
      found = {
        credential: identifier(claimAt(claims, settings.credential_claim)),
        consumer: claim ? identifier(claimAt(claims, claim)) : undefined,
      };
      ids.set(claims, found);
    }
    return found;
  };
  return {
    authenticated(c, claims, challenges) {
      const found = claims ? read(claims) : undefined;
      if (found?.credential !== undefined) {
        c.set("credential", found.credential);
        c.var.upstreamHeaders.set("x-credential-identifier", found.credential);
      }
      if (!claim) return undefined;
      const consumer = found?.consumer !== undefined ? c.var.consumers.find(found.consumer, settings.consumer_by) : undefined;
      if (!consumer) {
        if (settings.consumer_optional) return undefined;
        return new AuthError({
          error: "insufficient_scope",
          description: "the token maps to no consumer ('consumer_claim')",
          challenges,
          forbiddenMessage: settings.forbidden_error_message,
        });
      }
      c.set("consumer", consumer);
      c.var.logFields.consumer = consumer.name;
      setConsumerHeaders(c.var.upstreamHeaders, consumer);
      return undefined;
    },
    anonymous(c) {
      if (settings.anonymous === undefined) return false;
      const consumer = c.var.consumers.named(settings.anonymous);
      // `check` verified the name; a consumer gone from a reloaded config must not let callers in.
      if (!consumer) return false;
      c.set("consumer", consumer);
      c.set("anonymous", true);
      c.var.logFields.consumer = consumer.name;
      c.var.logFields.anonymous = true;
      setConsumerHeaders(c.var.upstreamHeaders, consumer);
      c.var.upstreamHeaders.set("x-anonymous-consumer", "true");
      return true;
    },
  };
}
