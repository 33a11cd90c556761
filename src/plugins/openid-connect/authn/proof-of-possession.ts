/**
 * Proof of possession for presented access tokens, as the plugin configures it:
 * `proof_of_possession_dpop` (RFC 9449) and `proof_of_possession_mtls` (RFC 8705). Built once
 * per plugin instance; `check` runs on every request, after the token's claims are known
 * (from the claims cache, a JWT verification or an introspection response). Proofs are never
 * cached: each request carries its own.
 *
 * Challenges carry the plugin's realm. An error goes with the scheme it concerns: DPoP errors
 * (and any error for a token presented with the `DPoP` scheme, or a DPoP-bound token presented
 * as `Bearer`) with the `DPoP` challenge and its `algs`; the others with `Bearer` (RFC 9449 §7.1).
 */
import { AuthError, type Challenge } from "../../../errors.ts";
import type { RequestContext } from "../../../gateway/context.ts";
import { assertSchemeFitsBinding, type PresentedToken } from "../../../oidc/resource/bearer-request.ts";
import { createDpopNonces } from "../../../oidc/resource/dpop-nonce.ts";
import { boundJkt, checkDpop, createDpopOrigins, DPOP_ALGORITHMS, dpopConfig, type DpopConfig, type PopMode } from "../../../oidc/resource/dpop.ts";
import { checkCertificateBinding } from "../../../oidc/resource/mtls.ts";
import { createMemoryReplayStore, type ReplayStore } from "../../../oidc/resource/replay-store.ts";
import type { PluginContext } from "../../types.ts";
import { REALM } from "./authenticator.ts";
import type { OpenIdConnectConfig } from "../schema.ts";

export interface ProofOfPossession {
  readonly dpop: PopMode;
  readonly mtls: PopMode;
  /** For a request without credentials: `Bearer` (unless DPoP is strict) and `DPoP` (unless off). */
  readonly challenges: readonly Challenge[];
  /** The challenges an error about a token presented with `scheme` goes with. */
  challengesFor(scheme: PresentedToken["scheme"], claims?: Readonly<Record<string, unknown>>): readonly Challenge[];
  /**
   * Checks that the caller holds what `claims` bind the token to (a DPoP key, a client
   * certificate), as the modes require. Throws `AuthError` with the plugin's challenges.
   * `accessTokenHash` is `accessTokenHash(token)`, cached with the claims. Returns undefined
   * (no promise to wait for) when there is nothing to check but the scheme.
   */
  check(c: RequestContext, presented: PresentedToken, claims: Readonly<Record<string, unknown>>, accessTokenHash?: string): Promise<void> | undefined;
}

export type ProofOfPossessionConfig = Pick<
  OpenIdConnectConfig,
  | "proof_of_possession_dpop"
  | "proof_of_possession_mtls"
  | "dpop_proof_lifetime"
  | "dpop_proof_clock_skew"
  | "dpop_use_nonce"
  | "dpop_nonce_secret"
  | "dpop_public_origins"
  | "dpop_replay_cache_max"
  | "leeway"
>;

/** DPoP codes always go with the DPoP challenge. */
const DPOP_ERRORS = new Set(["invalid_dpop_proof", "use_dpop_nonce"]);

export async function createProofOfPossession(
  config: ProofOfPossessionConfig,
  ctx: Pick<PluginContext, "shared" | "metrics" | "log" | "server" | "cluster"> & Partial<Pick<PluginContext, "runtime">>,
): Promise<ProofOfPossession> {
  const dpopMode = config.proof_of_possession_dpop;
  const mtlsMode = config.proof_of_possession_mtls;
  const bearer: Challenge = { scheme: "Bearer", params: { realm: REALM } };
  const dpopChallenge: Challenge = { scheme: "DPoP", params: { realm: REALM, algs: DPOP_ALGORITHMS.join(" ") } };
  const challenges: Challenge[] = [...(dpopMode === "strict" ? [] : [bearer]), ...(dpopMode === "off" ? [] : [dpopChallenge])];

  if (mtlsMode !== "off" && !ctx.server.tls?.client_ca) {
    ctx.log.warn("oidc.mtls_without_client_ca", {
      detail:
        "'proof_of_possession_mtls' is on but [server.tls] 'client_ca' is not set: no request carries a verified client certificate, certificate-bound tokens are refused",
    });
  }

  let dpop: DpopConfig | undefined;
  let replay: ReplayStore | undefined;
  let originsFor: ReturnType<typeof createDpopOrigins> | undefined;
  if (dpopMode !== "off") {
    // One nonce secret per process unless configured: every instance issues and accepts the same nonces.
    const secret = config.dpop_nonce_secret ?? ctx.shared.once("openid-connect.dpop.nonce_secret", () => crypto.getRandomValues(new Uint8Array(32)));
    const nonces = config.dpop_use_nonce ? await createDpopNonces({ secret }) : undefined;
    dpop = dpopConfig({
      algorithms: DPOP_ALGORITHMS,
      proofLifetime: config.dpop_proof_lifetime,
      leeway: config.leeway,
      clockSkew: config.dpop_proof_clock_skew,
      ...(nonces ? { nonces } : {}),
      ...(ctx.runtime?.sha256 ? { sha256: ctx.runtime.sha256 } : {}),
      ...(ctx.runtime?.jwsVerifier ? { jwsVerifier: ctx.runtime.jwsVerifier } : {}),
    });
    // One store per process (and bound), kept across reloads: a proof used before a reload stays used.
    const local = ctx.shared.once(`openid-connect.dpop.replay.${config.dpop_replay_cache_max}`, () =>
      createMemoryReplayStore({ maxEntries: config.dpop_replay_cache_max }),
    );
    // With [cluster] sharing dpop_replay, a proof accepted by any gateway of the fleet is refused by all.
    const store = ctx.cluster?.replayStore(local) ?? local;
    const metrics = ctx.metrics;
    const counted = (fresh: boolean) => {
      if (!fresh) metrics?.dpopReplay();
      return fresh;
    };
    // The in-memory store answers at once: no promise per proof unless the fleet's store is asked.
    replay = {
      checkAndRecord(key, expiresAt, now) {
        const fresh = store.checkAndRecord(key, expiresAt, now);
        return typeof fresh === "boolean" ? counted(fresh) : fresh.then(counted);
      },
    };
    originsFor = createDpopOrigins(config.dpop_public_origins);
  }

  // One array each: challengesFor runs on every authenticated request.
  const onlyDpop: readonly Challenge[] = [dpopChallenge];
  const onlyBearer: readonly Challenge[] = [bearer];
  const challengesFor = (scheme: PresentedToken["scheme"], claims?: Readonly<Record<string, unknown>>): readonly Challenge[] => {
    if (dpopMode !== "off" && (scheme === "DPoP" || dpopMode === "strict" || (claims && boundJkt(claims)))) return onlyDpop;
    return onlyBearer;
  };

  return {
    dpop: dpopMode,
    mtls: mtlsMode,
    challenges,
    challengesFor,
    check(c, presented, claims, accessTokenHash) {
      if (!dpop && mtlsMode === "off") {
        try {
          // RFC 9449 §7.2: a DPoP-bound token is never a plain bearer token, even with DPoP off.
          assertSchemeFitsBinding(presented, claims);
        } catch (error) {
          if (error instanceof AuthError) throw error.withChallenges(challengesFor(presented.scheme, claims));
          throw error;
        }
        return undefined;
      }
      return checkProofs(c, presented, claims, accessTokenHash);
    },
  };

  async function checkProofs(
    c: RequestContext,
    presented: PresentedToken,
    claims: Readonly<Record<string, unknown>>,
    accessTokenHash: string | undefined,
  ): Promise<void> {
    try {
      if (dpop && replay && originsFor) {
        const raw = c.req.raw;
        await checkDpop({
          mode: dpopMode,
          scheme: presented.scheme,
          method: raw.method,
          url: raw.url,
          headers: raw.headers,
          origins: originsFor({ tls: c.env.tls, localPort: c.env.localPort }),
          accessToken: presented.token,
          ...(accessTokenHash ? { accessTokenHash } : {}),
          claims,
          config: dpop,
          replay,
        });
      } else {
        // RFC 9449 §7.2: a DPoP-bound token is never a plain bearer token, even with DPoP off.
        assertSchemeFitsBinding(presented, claims);
      }
      await checkCertificateBinding({ mode: mtlsMode, claims, peerCertificate: c.env.peerCertificate });
    } catch (error) {
      if (!(error instanceof AuthError)) throw error;
      const dpopError = dpopMode !== "off" && error.error !== undefined && DPOP_ERRORS.has(error.error);
      throw error.withChallenges(dpopError ? [dpopChallenge] : challengesFor(presented.scheme, claims));
    }
  }
}
