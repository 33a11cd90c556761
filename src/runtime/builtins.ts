/**
 * node: builtins loaded on first use. Bun's bundler hoists a builtin's static import to the top of
 * the binary even from a lazily imported module, so each would be evaluated at every start
 * (node:crypto, node:http and node:net with their streams, node:tls).
 */
import type * as Crypto from "node:crypto";
import type * as Http from "node:http";
import type * as Https from "node:https";
import type * as Net from "node:net";
import type { Readable } from "node:stream";
import type * as Tls from "node:tls";

let crypto: typeof Crypto | undefined;
let http: typeof Http | undefined;
let https: typeof Https | undefined;
let net: typeof Net | undefined;
let stream: { readonly Readable: typeof Readable } | undefined;
let tls: typeof Tls | undefined;

export const nodeCrypto = (): typeof Crypto => (crypto ??= process.getBuiltinModule("node:crypto"));
export const nodeHttp = (): typeof Http => (http ??= process.getBuiltinModule("node:http"));
export const nodeHttps = (): typeof Https => (https ??= process.getBuiltinModule("node:https"));
export const nodeNet = (): typeof Net => (net ??= process.getBuiltinModule("node:net"));
export const nodeStream = (): { readonly Readable: typeof Readable } => (stream ??= process.getBuiltinModule("node:stream"));
export const nodeTls = (): typeof Tls => (tls ??= process.getBuiltinModule("node:tls"));
