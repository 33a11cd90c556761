/** The system's CA roots plus `extra`: a TLS client given its own CAs must still trust the public ones. */
import { rootCertificates } from "node:tls";

export const withSystemRoots = (extra: readonly string[]): string[] => [...rootCertificates, ...extra];
