/**
 * The system's CA roots plus `extra`: a TLS client given its own CAs must still trust the public
 * ones. node:tls is loaded on first use: evaluating it and its roots is a noticeable part of every
 * start, and a config without `ca` lists never needs them.
 */
import { nodeTls } from "./builtins.ts";

export const withSystemRoots = (extra: readonly string[]): string[] => [...nodeTls().rootCertificates, ...extra];
