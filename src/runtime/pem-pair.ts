/** Does a PEM private key belong to a PEM certificate? (node:crypto, on Bun and Deno alike) */
import { nodeCrypto } from "./builtins.ts";

export function keyMatchesCertificate(certPem: string, keyPem: string): boolean {
  try {
    const { X509Certificate, createPrivateKey } = nodeCrypto();
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    return false;
  }
}
