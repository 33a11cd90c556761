import { describe, expect, it } from "bun:test";
import { createTrustedProxies, forwardedCertificate, realIp } from "../../../src/gateway/trusted-proxies.ts";
import { inRanges, parseCidr } from "../../../src/lib/ip.ts";
import { createLogger } from "../../../src/log.ts";

const ranges = ["10.0.0.0/8", "::1"].map((c) => parseCidr(c)!);

describe("IP ranges (trusted_ips)", () => {
  it("match IPv4, IPv6 and IPv4-mapped addresses, and reject what is not an address", () => {
    expect(inRanges("10.1.2.3", ranges)).toBe(true);
    expect(inRanges("::ffff:10.9.9.9", ranges)).toBe(true);
    expect(inRanges("::1", ranges)).toBe(true);
    expect(inRanges("11.0.0.1", ranges)).toBe(false);
    expect(inRanges("not-an-ip", ranges)).toBe(false);
    expect(parseCidr("10.0.0.0/33")).toBeUndefined();
    expect(parseCidr("fd00::/8")).toBeDefined();
  });
});

describe("the client's address from a trusted peer (nginx realip)", () => {
  it("is the last address of the chain, or the last one not trusted with real_ip_recursive", () => {
    expect(realIp("203.0.113.9, 10.0.0.2", ranges, false)).toBe("10.0.0.2");
    expect(realIp("203.0.113.9, 10.0.0.2", ranges, true)).toBe("203.0.113.9");
    expect(realIp("garbage", ranges, true)).toBeUndefined();
  });

  it("is taken only from a trusted peer", () => {
    const trust = createTrustedProxies(
      { trusted_ips: ["10.0.0.0/8"], real_ip_header: "X-Real-IP", real_ip_recursive: false, client_cert_header_format: "xfcc" },
      createLogger("error", () => {}),
    )!;
    const headers = new Headers({ "x-real-ip": "203.0.113.9", "x-forwarded-for": "198.51.100.1" });
    expect(trust.resolve({ remoteAddress: "192.0.2.1", localPort: 8000, tls: false }, headers)).toBeUndefined();
    const view = trust.resolve({ remoteAddress: "10.0.0.5", localPort: 8000, tls: false }, headers)!;
    expect(view.conn.remoteAddress).toBe("203.0.113.9");
    expect(view.forwarded.for).toBe("198.51.100.1, 10.0.0.5");
  });
});

describe("a forwarded client certificate", () => {
  it("reads XFCC's Hash= as the RFC 8705 thumbprint, and refuses what does not parse", () => {
    const hash = "a".repeat(64);
    const cert = forwardedCertificate(`By=spiffe://x;Hash=${hash};Subject="CN=a"`, "xfcc");
    expect(cert).not.toBe("invalid");
    expect((cert as { sha256: string }).sha256).toBe(Buffer.from(hash, "hex").toString("base64url"));
    expect(forwardedCertificate("Cert=%%%", "xfcc")).toBe("invalid");
    expect(forwardedCertificate("Hash=short", "xfcc")).toBe("invalid");
    expect(forwardedCertificate("not a pem", "pem")).toBe("invalid");
  });
});
