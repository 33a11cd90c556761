#!/usr/bin/env node
// @ts-check
/**
 * CLI for the test IdP.
 *
 *   node test/support/idp/main.mjs [--port 8080] [--host 127.0.0.1] [--issuer-host localhost]
 *                                  [--tls-dir certs] [--options-json '{...}']
 *
 * --options-json takes any startIdp() option (see provider.mjs, IdpOptions); the flags win over it.
 * --tls-dir DIR is shorthand for tls: { cert: DIR/gateway.crt, key: DIR/gateway.key, ca: DIR/ca.crt }.
 *
 * stdout gets exactly one line, when listening:
 *   {"event":"idp.ready","issuer":"http://localhost:8080/realms/master","port":8080,...}
 * Everything else goes to stderr. Exits 0 on SIGTERM / SIGINT.
 */

import * as path from "node:path";
import { parseArgs } from "node:util";

// Keep stdout for the ready line only (oidc-provider prints notices with console.info).
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

const { startIdp } = await import("./provider.mjs");

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string" },
    "issuer-host": { type: "string" },
    "options-json": { type: "string" },
    "tls-dir": { type: "string" },
    help: { type: "boolean", short: "h" },
  },
  strict: true,
});

if (values.help) {
  process.stderr.write(`usage: node test/support/idp/main.mjs [--port 8080] [--host 127.0.0.1] \
[--issuer-host localhost] [--tls-dir certs] [--options-json '{...}']\n`);
  process.exit(0);
}

/** @type {import('./provider.mjs').IdpOptions} */
const options = values["options-json"] ? JSON.parse(values["options-json"]) : {};
if (values.port !== undefined) options.port = Number(values.port);
if (values.host !== undefined) options.host = values.host;
if (values["issuer-host"] !== undefined) options.issuerHost = values["issuer-host"];
if (values["tls-dir"] !== undefined) {
  const dir = values["tls-dir"];
  options.tls = {
    cert: path.join(dir, "gateway.crt"),
    key: path.join(dir, "gateway.key"),
    ca: path.join(dir, "ca.crt"),
    ...options.tls,
  };
}

let idp;
try {
  idp = await startIdp(options);
} catch (error) {
  if (error?.code !== "EADDRINUSE") throw error;
  process.stderr.write(`idp: port ${options.port ?? 8080} is in use (stop what listens there, e.g. another make run)\n`);
  process.exit(1);
}

process.stdout.write(
  `${JSON.stringify({
    event: "idp.ready",
    issuer: idp.issuer,
    port: idp.port,
    url: idp.url,
    protocol: idp.protocol,
    discovery: idp.discoveryUrl,
    tokenEndpoint: idp.tokenEndpoint,
    jwksUri: idp.jwksUri,
    introspectionEndpoint: idp.introspectionEndpoint,
    control: `${idp.url}/__control`,
  })}\n`,
);

let stopping = false;
/** @param {string} signal */
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`idp: ${signal}, shutting down\n`);
  const timer = setTimeout(() => process.exit(0), 3000);
  timer.unref();
  await idp.close();
  process.exit(0);
}
process.on("SIGTERM", () => {
  void stop("SIGTERM");
});
process.on("SIGINT", () => {
  void stop("SIGINT");
});
