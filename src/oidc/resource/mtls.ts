/**
 * Certificate-bound access tokens at a resource server (RFC 8705 §3): the token's
 * `cnf["x5t#S256"]` must equal base64url(SHA-256(DER of the client certificate of this TLS
 * connection)). Only a certificate the listener verified against `[server.tls] client_ca`
 * counts; a certificate from another CA is treated as no certificate.
 */
import { AuthError, type Challenge } from "../../errors.ts";
import type { PeerCertificate } from "../../runtime/types.ts";
import { timingSafeEqual } from "./dpop-nonce.ts";
import type { PopMode } from "./dpop.ts";
import { base64url } from "../../lib/base64url.ts";

export type { PopMode } from "./dpop.ts";

// One certificate per connection (the listener hands the same object to every request on it):
// the hash is computed once per connection, not per request.
const thumbprints = new WeakMap<PeerCertificate, Promise<string>>();

/** RFC 8705 §3.1 `x5t#S256` of a certificate. */
export function certificateThumbprint(cert: PeerCertificate): Promise<string> {
  if (cert.sha256) return Promise.resolve(cert.sha256);
  let value = thumbprints.get(cert);
  if (!value) {
    value = crypto.subtle.digest("SHA-256", cert.der as Uint8Array<ArrayBuffer>).then((d) => base64url(new Uint8Array(d)));
    thumbprints.set(cert, value);
  }
  return value;
}

/** The `cnf["x5t#S256"]` of verified token claims, if the token is certificate-bound. */
function boundCertificateThumbprint(claims: Readonly<Record<string, unknown>>): string | undefined {
  const cnf = claims.cnf;
  if (!cnf || typeof cnf !== "object") return undefined;
  const x5t = (cnf as Record<string, unknown>)["x5t#S256"];
  return typeof x5t === "string" && x5t ? x5t : undefined;
}

export interface CertificateBindingInput {
  /** Kong's `proof_of_possession_mtls`. */
  readonly mode: PopMode;
  readonly claims: Readonly<Record<string, unknown>>;
  /** The connection's client certificate (`ConnInfo.peerCertificate`). */
  readonly peerCertificate: PeerCertificate | undefined;
  /** Challenges for the 401 (default: one `Bearer`); the plugin passes its realm. */
  readonly challenges?: readonly Challenge[];
}

/**
 * `off`: nothing is checked. `optional`: a certificate-bound token must come over a connection
 * with that certificate; unbound tokens pass. `strict`: every token must be certificate-bound
 * and match. Failures are 401 `invalid_token` (RFC 8705 §3). Returns the matched thumbprint.
 */
export async function checkCertificateBinding(input: CertificateBindingInput): Promise<string | undefined> {
  if (input.mode === "off") return undefined;
  const fail = (description: string) =>
    new AuthError({ error: "invalid_token", description, ...(input.challenges ? { challenges: input.challenges } : {}) });
  const expected = boundCertificateThumbprint(input.claims);
  if (!expected) {
    if (input.mode === "strict") throw fail("the access token is not bound to a client certificate");
    return undefined;
  }
  const cert = input.peerCertificate;
  if (!cert?.verified) throw fail("a certificate-bound access token requires the client certificate it is bound to");
  const actual = await certificateThumbprint(cert);
  if (!timingSafeEqual(actual, expected)) throw fail("the access token is bound to another client certificate");
  return actual;
}
