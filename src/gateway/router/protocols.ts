/**
 * Kong checks a route's `protocols` after matching, not while matching: an HTTPS-only route
 * reached over HTTP answers 426 (or redirects, `https_redirect_status_code`), so the caller learns
 * to use TLS instead of silently reaching another route.
 */
import { UpgradeRequiredError } from "../../errors.ts";

export interface ProtocolRules {
  readonly protocols: readonly string[];
  readonly https_redirect_status_code?: number;
}

export interface ProtocolFacts {
  readonly tls: boolean;
  /** The request asks for `Upgrade: websocket`. */
  readonly websocket: boolean;
  /** The Host header, for the redirect. */
  readonly host: string;
  /** Path and query as sent, for the redirect. */
  readonly requestUri: string;
}

/** A redirect to https, or undefined when the request may go on; throws the 426. */
export function checkProtocol(rules: ProtocolRules, req: ProtocolFacts): Response | undefined {
  const p = rules.protocols;
  const plain = p.includes("http") || p.includes("ws");
  if (!req.tls && !plain) {
    const status = rules.https_redirect_status_code ?? 426;
    if (status === 426) throw new UpgradeRequiredError("https");
    // Kong redirects to nginx's $host: the Host header's name, without its port.
    const host = req.host.replace(/:\d+$/, "").toLowerCase();
    return new Response(null, { status, headers: { location: `https://${host}${req.requestUri}` } });
  }
  if (!req.websocket && !p.includes("http") && !p.includes("https")) throw new UpgradeRequiredError("websocket");
  return undefined;
}

/** True for a WebSocket opening handshake (RFC 6455 §4.1: `Upgrade: websocket`). */
export function isWebSocketUpgrade(headers: Headers): boolean {
  const upgrade = headers.get("upgrade");
  return upgrade !== null && upgrade.toLowerCase() === "websocket";
}
