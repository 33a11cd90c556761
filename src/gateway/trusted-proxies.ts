/**
 * Behind a load balancer (kong.conf's `trusted_ips`, `real_ip_header`, `real_ip_recursive`): a
 * request from a trusted peer carries the client's address, its X-Forwarded-* headers and, when
 * the balancer terminated mutual TLS, the client certificate in a header (Envoy's
 * `X-Forwarded-Client-Cert`, or nginx's URL-encoded `$ssl_client_escaped_cert`). From any other
 * peer those headers are caller input: removed, never trusted (src/gateway/headers.ts).
 */
import { inRanges, parseCidr, parseIp, type CidrRange } from "../lib/ip.ts";
import type { Logger } from "../log.ts";
import type { ConnInfo, PeerCertificate } from "../runtime/types.ts";

export interface TrustSettings {
  readonly trusted_ips: readonly string[];
  readonly real_ip_header: string;
  readonly real_ip_recursive: boolean;
  readonly client_cert_header?: string | undefined;
  readonly client_cert_header_format: "xfcc" | "pem";
}

/** X-Forwarded-* values a trusted peer sent, passed on to the upstream (the client's address appended to the chain). */
export interface ForwardedChain {
  readonly for: string;
  readonly proto?: string | undefined;
  readonly host?: string | undefined;
  readonly port?: string | undefined;
  readonly path?: string | undefined;
}

interface TrustedView {
  /** The connection as the client made it: its address and, when forwarded, its certificate. */
  readonly conn: ConnInfo;
  readonly forwarded: ForwardedChain;
}

export interface TrustedProxies {
  /** Undefined for an untrusted peer: its request is taken as it is. */
  resolve(conn: ConnInfo, headers: Headers): TrustedView | undefined;
}

function pemToDer(pem: string): Uint8Array | undefined {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/.exec(pem);
  if (!m) return undefined;
  try {
    return Uint8Array.from(atob(m[1]!.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  } catch {
    return undefined;
  }
}

const hexToBase64url = (hex: string) =>
  btoa(String.fromCharCode(...hex.match(/../g)!.map((h) => parseInt(h, 16))))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

/** Splits one XFCC element (`Hash=…;Cert="…";Subject="…"`) into its key/value pairs. */
function xfccFields(element: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = /([A-Za-z]+)=("(?:[^"\\]|\\.)*"|[^;,]*)/g;
  for (let m = re.exec(element); m; m = re.exec(element)) {
    const raw = m[2]!;
    out.set(m[1]!.toLowerCase(), raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, "$1") : raw);
  }
  return out;
}

/** A URL-encoded PEM certificate (XFCC's `Cert=`, nginx's `$ssl_client_escaped_cert`), verified by the peer. */
function encodedPemCertificate(value: string, subject: string): PeerCertificate | "invalid" {
  let pem: string;
  try {
    pem = decodeURIComponent(value);
  } catch {
    return "invalid";
  }
  const der = pemToDer(pem);
  return der ? { der, subject, verified: true } : "invalid";
}

/**
 * The client certificate a trusted peer forwarded, or "invalid" when the header does not parse.
 * XFCC may hold several elements (one per proxy hop): the last one is the hop in front of us.
 */
export function forwardedCertificate(value: string, format: "xfcc" | "pem"): PeerCertificate | "invalid" {
  if (format === "pem") return encodedPemCertificate(value, "");
  const elements = value.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/);
  const fields = xfccFields(elements[elements.length - 1]!);
  const subject = fields.get("subject") ?? "";
  const cert = fields.get("cert");
  if (cert !== undefined) return encodedPemCertificate(cert, subject);
  const hash = fields.get("hash");
  if (hash && /^[0-9a-fA-F]{64}$/.test(hash)) return { der: new Uint8Array(0), sha256: hexToBase64url(hash), subject, verified: true };
  return "invalid";
}

/** nginx's realip: the last address of the header, or with `recursive` the last one that is not trusted. */
export function realIp(value: string, ranges: readonly CidrRange[], recursive: boolean): string | undefined {
  const list = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (!list.length) return undefined;
  let pick = list[list.length - 1]!;
  if (recursive) {
    for (let i = list.length - 1; i >= 0; i--) {
      pick = list[i]!;
      if (!inRanges(pick, ranges)) break;
    }
  }
  return parseIp(pick) === undefined ? undefined : pick.replace(/^\[|\]$/g, "");
}

export function createTrustedProxies(settings: TrustSettings, log: Logger): TrustedProxies | undefined {
  if (!settings.trusted_ips.length) return undefined;
  const ranges = settings.trusted_ips.map((t) => parseCidr(t)!);
  const ipHeader = settings.real_ip_header.toLowerCase();
  const certHeader = settings.client_cert_header?.toLowerCase();
  return {
    resolve(conn, headers) {
      if (!inRanges(conn.remoteAddress, ranges)) return undefined;
      const claimed = headers.get(ipHeader);
      const address = (claimed && realIp(claimed, ranges, settings.real_ip_recursive)) || conn.remoteAddress;
      const xff = headers.get("x-forwarded-for");
      let peerCertificate = conn.peerCertificate;
      const certValue = certHeader ? headers.get(certHeader) : null;
      if (certValue) {
        const cert = forwardedCertificate(certValue, settings.client_cert_header_format);
        if (cert === "invalid") {
          // Treated as no certificate: a certificate-bound token is refused (401); logged for the operator.
          log.warn("trusted_proxy.bad_client_certificate_header", { header: settings.client_cert_header, peer: conn.remoteAddress });
          peerCertificate = { der: new Uint8Array(0), subject: "", verified: false };
        } else peerCertificate = cert;
      }
      return {
        conn: { ...conn, remoteAddress: address, ...(peerCertificate ? { peerCertificate } : {}) },
        forwarded: {
          for: xff ? `${xff}, ${conn.remoteAddress}` : conn.remoteAddress,
          proto: headers.get("x-forwarded-proto") ?? undefined,
          host: headers.get("x-forwarded-host") ?? undefined,
          port: headers.get("x-forwarded-port") ?? undefined,
          path: headers.get("x-forwarded-path") ?? undefined,
        },
      };
    },
  };
}
