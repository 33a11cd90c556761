/** Does a PEM private key belong to a PEM certificate? (node:crypto, on Bun and Deno alike) */
import { X509Certificate, createPrivateKey } from "node:crypto";

export function keyMatchesCertificate(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}
