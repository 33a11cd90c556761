/**
 * The gateway as an OAuth client of the IdP (`client_id` + `client_auth`): how it authenticates
 * at the token and introspection endpoints, with Kong's method names:
 *
 * - `client_secret_basic` / `client_secret_post`: the secret in a Basic header / in the body;
 * - `client_secret_jwt` (RFC 7523): an assertion MACed with the secret, `client_alg` when it is
 *   `HS256`/`HS384`/`HS512` (else HS256), with the claims and `aud` of `private_key_jwt`;
 * - `private_key_jwt` (RFC 7523, OIDC Core §9): an assertion signed with a key of the gateway's
 *   key store (`client_alg`, or the key `client_jwk`), `iss` = `sub` = `client_id`, `aud` = the
 *   issuer identifier (or the token endpoint, for IdPs that want it), fresh `jti`, `exp` 60 s;
 * - `tls_client_auth` / `self_signed_tls_client_auth` (RFC 8705 §2): `client_id` in the body and
 *   the request over mutual TLS with `tls_client_auth_cert`, to the discovered
 *   `mtls_endpoint_aliases` when there are some (`mtls_token_endpoint` and
 *   `mtls_introspection_endpoint` override them);
 * - `none`: `client_id` only (a public client).
 *
 * Everything that can be checked is checked at start (files, keys); per call only the method
 * for the IdP's metadata is looked up (memoised per discovery document), and a
 * `private_key_jwt` assertion is signed.
 */
import * as oauth from "oauth4webapi";
import { ConfigError, IdpError, KeyStoreError } from "../../errors.ts";
import { isSigningAlgorithm, type SigningAlgorithm } from "../../keys/jwk.ts";
import type { KeyStore, SigningKey } from "../../keys/types.ts";
import type { FetchLike } from "../../runtime/types.ts";
import { clientSecretBasic } from "./basic-credentials.ts";
import { clientSecretJwt, isHmacAlgorithm, type HmacAlgorithm } from "./secret-jwt.ts";
import type { ForwardProxy } from "./forward-proxy.ts";
import { createIdpFetch, type OutboundContext } from "./outbound.ts";
import { readPemFile } from "../../config/pem-file.ts";

/** Kong's `client_auth` values this gateway implements. */
export const CLIENT_AUTH_METHODS = [
  "client_secret_basic",
  "client_secret_post",
  "client_secret_jwt",
  "private_key_jwt",
  "tls_client_auth",
  "self_signed_tls_client_auth",
  "none",
] as const;
export type ClientAuthMethod = (typeof CLIENT_AUTH_METHODS)[number];

const MTLS_METHODS: ReadonlySet<ClientAuthMethod> = new Set(["tls_client_auth", "self_signed_tls_client_auth"]);
const SECRET_METHODS: ReadonlySet<ClientAuthMethod> = new Set(["client_secret_basic", "client_secret_post", "client_secret_jwt"]);

const usesMtls = (method: ClientAuthMethod) => MTLS_METHODS.has(method);

/** Endpoints the gateway calls as a client. */
type ClientEndpoint = "token_endpoint" | "introspection_endpoint";

/** Config key names, for messages: `client_jwk` in openid-connect, `client.client_jwk` elsewhere. */
export interface ClientAuthKeyNames {
  readonly client_id: string;
  readonly client_secret: string;
  readonly client_auth: string;
  readonly client_alg: string;
  readonly client_jwk: string;
  readonly tls_client_auth_cert: string;
  readonly tls_client_auth_key: string;
}

export const KONG_KEY_NAMES: ClientAuthKeyNames = {
  client_id: "client_id",
  client_secret: "client_secret",
  client_auth: "client_auth",
  client_alg: "client_alg",
  client_jwk: "client_jwk",
  tls_client_auth_cert: "tls_client_auth_cert",
  tls_client_auth_key: "tls_client_auth_key",
};

export interface ClientAuthSettings {
  readonly clientId: string;
  readonly clientSecret?: string | undefined;
  /** In order of preference: the first one the IdP lists as supported is used. */
  readonly methods: readonly ClientAuthMethod[];
  /** `client_alg`: an asymmetric one signs `private_key_jwt`, an `HS*` one `client_secret_jwt`. */
  readonly alg: SigningAlgorithm | HmacAlgorithm;
  /** `client_jwk`: the `kid` of the key to sign with. */
  readonly kid?: string | undefined;
  /** PEM files (`tls_client_auth_cert`, `tls_client_auth_key`). */
  readonly tlsCertFile?: string | undefined;
  readonly tlsKeyFile?: string | undefined;
  /** Verify the IdP's certificate on the mutual TLS connection (`tls_client_auth_ssl_verify`). */
  readonly tlsVerify: boolean;
  /** `aud` of `private_key_jwt` and `client_secret_jwt` assertions. */
  readonly assertionAudience: "issuer" | "token_endpoint";
  /** Endpoint URLs that replace the discovered ones. */
  readonly endpoints?: Partial<Record<ClientEndpoint | `mtls_${ClientEndpoint}`, string | undefined>>;
  /** Outbound timeout (ms), for the mutual TLS client. */
  readonly timeout: number;
  readonly keyNames?: ClientAuthKeyNames;
}

/** Everything one call to an IdP endpoint needs. */
export interface ClientCall {
  readonly method: ClientAuthMethod;
  /** The metadata with the endpoint resolved (mTLS alias or override applied). */
  readonly as: oauth.AuthorizationServer;
  readonly client: oauth.Client;
  readonly auth: oauth.ClientAuth;
  readonly fetch: FetchLike;
  /** The endpoint URL called. */
  readonly url: string;
  /**
   * `private_key_jwt` right after a rotation: the same call signed with the key the rotation
   * retired, while it is published (the IdP may still hold the old JWKS); `undefined` otherwise.
   */
  readonly withPreviousKey?: () => Promise<ClientCall | undefined>;
}

export interface GatewayClient {
  readonly clientId: string;
  readonly methods: readonly ClientAuthMethod[];
  /** How to call `endpoint` of the IdP described by `as`; throws `IdpError` when it has no such endpoint. */
  call(as: oauth.AuthorizationServer, endpoint: ClientEndpoint): ClientCall;
}

/** Kong picks a method from what is configured when `client_auth` is not set; so do we. */
export function defaultClientAuth(config: {
  readonly clientSecret?: string | undefined;
  readonly tlsCertFile?: string | undefined;
}): ClientAuthMethod {
  if (config.clientSecret !== undefined) return "client_secret_basic";
  if (config.tlsCertFile !== undefined) return "tls_client_auth";
  return "private_key_jwt";
}

export interface ClientAuthIssue {
  /** The config key the issue is about (a name from `ClientAuthKeyNames`). */
  readonly key: keyof ClientAuthKeyNames;
  readonly message: string;
}

/** What the schema refuses (no files or keys are read here: `check` stays offline). */
export function clientAuthIssues(
  c: {
    readonly methods: readonly ClientAuthMethod[];
    readonly clientSecret?: string | undefined;
    readonly tlsCertFile?: string | undefined;
    readonly tlsKeyFile?: string | undefined;
    readonly alg?: string | undefined;
  },
  names: ClientAuthKeyNames = KONG_KEY_NAMES,
): ClientAuthIssue[] {
  const issues: ClientAuthIssue[] = [];
  const secret = c.methods.find((m) => SECRET_METHODS.has(m));
  if (secret && c.clientSecret === undefined) {
    issues.push({ key: "client_secret", message: `missing required key: '${names.client_auth}' "${secret}" needs '${names.client_secret}'` });
  }
  const mtls = c.methods.find((m) => MTLS_METHODS.has(m));
  if (mtls && c.tlsCertFile === undefined) {
    issues.push({
      key: "tls_client_auth_cert",
      message: `missing required key: '${names.client_auth}' "${mtls}" needs '${names.tls_client_auth_cert}' and '${names.tls_client_auth_key}'`,
    });
  }
  if (c.tlsCertFile !== undefined && c.tlsKeyFile === undefined) {
    issues.push({
      key: "tls_client_auth_key",
      message: `missing required key: '${names.tls_client_auth_cert}' needs '${names.tls_client_auth_key}'`,
    });
  }
  if (c.tlsKeyFile !== undefined && c.tlsCertFile === undefined) {
    issues.push({
      key: "tls_client_auth_cert",
      message: `missing required key: '${names.tls_client_auth_key}' needs '${names.tls_client_auth_cert}'`,
    });
  }
  if (c.alg !== undefined && !isSigningAlgorithm(c.alg) && !isHmacAlgorithm(c.alg)) {
    issues.push({ key: "client_alg", message: `expected a signing algorithm, got "${c.alg}"` });
  } else if (isHmacAlgorithm(c.alg) && c.methods.includes("private_key_jwt")) {
    issues.push({
      key: "client_alg",
      message: `"${c.alg}" is for "client_secret_jwt": '${names.client_auth}' "private_key_jwt" needs an asymmetric algorithm (RS256, PS256, ES256, EdDSA, ...)`,
    });
  }
  return issues;
}

function supportedList(as: oauth.AuthorizationServer, endpoint: ClientEndpoint): readonly string[] | undefined {
  const own = endpoint === "introspection_endpoint" ? as.introspection_endpoint_auth_methods_supported : undefined;
  const list = own ?? as.token_endpoint_auth_methods_supported;
  return Array.isArray(list) ? list : undefined;
}

export interface GatewayClientDeps {
  readonly ctx: OutboundContext & { readonly keys: KeyStore };
  /** The IdP's fetch (timeout, trust store, `ssl_verify`): for every method but mutual TLS. */
  readonly fetch: FetchLike;
  /** Prefix of start errors, e.g. `plugin "openid-connect"`. */
  readonly where: string;
  /** Forward proxies, for the mutual TLS client (the IdP's fetch has them already). */
  readonly proxy?: ForwardProxy | undefined;
}

/**
 * Builds the gateway's client from settings checked by the schema: reads the certificate, checks
 * that a signing key fits. Every problem is a `ConfigError` that names the key.
 */
export async function createGatewayClient(settings: ClientAuthSettings, deps: GatewayClientDeps): Promise<GatewayClient> {
  const names = settings.keyNames ?? KONG_KEY_NAMES;
  const { where } = deps;
  const methods = [...settings.methods];
  let mtlsFetch: FetchLike | undefined;
  if (methods.some(usesMtls)) {
    const cert = await readPemFile(deps.ctx.runtime, settings.tlsCertFile!, `${where}: ${names.tls_client_auth_cert}`, "CERTIFICATE");
    const key = await readPemFile(deps.ctx.runtime, settings.tlsKeyFile!, `${where}: ${names.tls_client_auth_key}`, "PRIVATE KEY");
    mtlsFetch = createIdpFetch(deps.ctx, {
      timeout: settings.timeout,
      sslVerify: settings.tlsVerify,
      clientCertificate: { cert, key },
      proxy: deps.proxy,
    });
  }
  const keys = deps.ctx.keys;
  // An HS `client_alg` is client_secret_jwt's: refused below for private_key_jwt, which alone uses the selector.
  const selector = { alg: isHmacAlgorithm(settings.alg) ? "RS256" : settings.alg, kid: settings.kid } as const;
  const secretAlg: HmacAlgorithm = isHmacAlgorithm(settings.alg) ? settings.alg : "HS256";
  if (methods.includes("private_key_jwt")) {
    if (isHmacAlgorithm(settings.alg))
      throw new ConfigError(`${where}: ${names.client_alg}: "${settings.alg}" is for client_secret_jwt, not private_key_jwt`);
    try {
      await keys.signingKey(selector); // generates the keys if this is their first use
    } catch (error) {
      if (!(error instanceof KeyStoreError)) throw error;
      const key = error.setting === "client_jwk" ? names.client_jwk : error.setting === "client_alg" ? names.client_alg : error.setting;
      throw new ConfigError(`${where}: ${key}: ${error.message}`);
    }
  }

  const auth = (method: ClientAuthMethod, tokenEndpoint: string): oauth.ClientAuth => {
    switch (method) {
      case "client_secret_basic":
        return clientSecretBasic(settings.clientSecret!);
      case "client_secret_post":
        return oauth.ClientSecretPost(settings.clientSecret!);
      case "client_secret_jwt":
        return clientSecretJwt(settings.clientSecret!, secretAlg, settings.assertionAudience === "token_endpoint" ? tokenEndpoint : undefined);
      case "tls_client_auth":
      case "self_signed_tls_client_auth":
        return oauth.TlsClientAuth();
      case "none":
        return oauth.None();
      case "private_key_jwt":
        // The key is looked up per assertion, so a rotation is used from the next token request on.
        return assertion(() => keys.signingKey(selector), tokenEndpoint);
    }
  };

  const assertion =
    (key: () => Promise<SigningKey>, tokenEndpoint: string): oauth.ClientAuth =>
    async (as, client, body, headers) => {
      const signing = await key();
      const sign = oauth.PrivateKeyJwt(
        { key: signing.privateKey, kid: signing.kid },
        {
          [oauth.modifyAssertion]: (header, payload) => {
            header.alg = signing.alg; // the JWK's own name (EdDSA, not oauth4webapi's Ed25519)
            if (settings.assertionAudience === "token_endpoint") payload.aud = tokenEndpoint;
          },
        },
      );
      await sign(as, client, body, headers);
    };

  /** The retry of `call` with the previous key, when there is one that did not sign it already. */
  const withPreviousKey = (call: Omit<ClientCall, "withPreviousKey">, tokenEndpoint: string) => async (): Promise<ClientCall | undefined> => {
    const previous = await keys.previousSigningKey(selector);
    if (!previous || previous.kid === (await keys.signingKey(selector)).kid) return undefined;
    return { ...call, auth: assertion(async () => previous, tokenEndpoint) };
  };

  const pick = (as: oauth.AuthorizationServer, endpoint: ClientEndpoint): ClientAuthMethod => {
    if (methods.length === 1) return methods[0]!;
    const supported = supportedList(as, endpoint);
    return (supported && methods.find((m) => supported.includes(m))) ?? methods[0]!;
  };

  const urlFor = (as: oauth.AuthorizationServer, endpoint: ClientEndpoint, mtls: boolean): string | undefined => {
    const overrides = settings.endpoints ?? {};
    if (mtls) {
      const alias = overrides[`mtls_${endpoint}`] ?? as.mtls_endpoint_aliases?.[endpoint];
      if (typeof alias === "string") return alias;
    }
    const plain = overrides[endpoint] ?? as[endpoint];
    return typeof plain === "string" ? plain : undefined;
  };

  const memo = new WeakMap<oauth.AuthorizationServer, Map<ClientEndpoint, ClientCall>>();
  return {
    clientId: settings.clientId,
    methods,
    call(as, endpoint) {
      let calls = memo.get(as);
      const known = calls?.get(endpoint);
      if (known) return known;
      const method = pick(as, endpoint);
      const mtls = usesMtls(method);
      const url = urlFor(as, endpoint, mtls);
      if (!url) {
        throw new IdpError(
          "misconfigured",
          `the discovery document of ${as.issuer} has no ${endpoint}${endpoint === "introspection_endpoint" ? "; set 'introspection_endpoint'" : ""}`,
        );
      }
      const tokenEndpoint = urlFor(as, "token_endpoint", mtls) ?? url;
      const plain = {
        method,
        as: { ...as, [endpoint]: url },
        client: { client_id: settings.clientId },
        auth: auth(method, tokenEndpoint),
        fetch: mtls ? mtlsFetch! : deps.fetch,
        url,
      };
      // A pinned `client_jwk` has no previous key to fall back to.
      const call: ClientCall =
        method === "private_key_jwt" && settings.kid === undefined ? { ...plain, withPreviousKey: withPreviousKey(plain, tokenEndpoint) } : plain;
      if (!calls) memo.set(as, (calls = new Map()));
      calls.set(endpoint, call);
      return call;
    },
  };
}
