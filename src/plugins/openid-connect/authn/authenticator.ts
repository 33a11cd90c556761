/**
 * One way of authenticating a caller (`auth_methods` entry). The plugin asks its authenticators
 * in turn; each answers with a principal, with `undefined` ("not mine": the request carries no
 * credentials of its kind, ask the next one), or rejects by throwing a coded error (`AuthError`
 * for the caller's fault, `IdpError` for ours). A rejection ends the chain: credentials that
 * were recognised but are wrong never fall through to a weaker method.
 */
import type { KeySource } from "../../../oidc/resource/verify-access-token.ts";
import type { Challenge } from "../../../errors.ts";
import type { RequestContext } from "../../../gateway/context.ts";
import type { Issuer } from "../../../oidc/client/issuer.ts";
import type { PluginContext } from "../../types.ts";
import type { OpenIdConnectConfig } from "../schema.ts";
import type { Grant } from "../mutate.ts";

export interface Principal {
  /** The `auth_methods` entry that authenticated the caller. */
  readonly method: string;
  /**
   * The access token for the upstream and its verified claims (absent for an opaque token): the
   * object the token cache holds, the same one for every request with that token, so the plugin
   * can remember what it renders from it. Never rendered headers: a cache may be shared by
   * plugin instances with other header settings.
   */
  readonly grant: Grant;
  /**
   * The challenges a refusal of this caller goes with (`audience_required`, `scopes_required`):
   * the scheme a presented token came with, `Bearer` for a token the gateway got for the caller.
   */
  readonly challenges: readonly Challenge[];
}

export interface Authenticator {
  readonly method: string;
  /** `WWW-Authenticate` challenges for a request no authenticator claimed. */
  readonly challenges: readonly Challenge[];
  authenticate(c: RequestContext): Promise<Principal | undefined>;
  close?(): void;
}

/** What an authenticator is built from. */
export interface AuthenticatorDeps {
  readonly config: Readonly<OpenIdConnectConfig>;
  /** The shared discovery + JWKS cache of `config.issuer`. */
  readonly issuer: Issuer;
  /** Where bearer tokens' keys come from: `issuer`, or with `issuers_allowed`/`extra_jwks_uris` all of them. */
  readonly keys: KeySource;
  readonly ctx: PluginContext;
}

export type AuthenticatorFactory = (deps: AuthenticatorDeps) => Authenticator | Promise<Authenticator>;

/** The `realm` of our challenges. */
export const REALM = "oidc-gateway";

/**
 * The challenges of a refusal about a token the gateway got for the caller's credentials
 * (client credentials, password): the errors are RFC 6750 §3.1 token errors, which only a
 * `Bearer` challenge can carry (with `scope` for `insufficient_scope`).
 */
export const TOKEN_CHALLENGES: readonly Challenge[] = [{ scheme: "Bearer", params: { realm: REALM } }];
