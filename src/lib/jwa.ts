/** JOSE lists the verifier, the DPoP check and the JWKS code share (RFC 7517, 7518, 8037). */

/** Asymmetric JWS algorithms: the only ones a token or a DPoP proof may use by default. */
// ECDSA first: the order DPoP challenges list them in (`algs`).
export const ASYMMETRIC_ALGORITHMS = ["ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA", "Ed25519"] as const;

/** Members only a private or symmetric JWK has (RFC 7517 §9.2, RFC 7518 §6): never shown, never accepted as a public key. */
export const PRIVATE_JWK_MEMBERS: readonly string[] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"];
