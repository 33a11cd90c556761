import { describe, expect, it } from "bun:test";
import { createDpopOrigins, htuMatches, normalizeHttpUri, normalizeOrigin } from "../../../../src/oidc/resource/dpop.ts";

describe("htu normalisation (RFC 3986 §6.2.2 and §6.2.3)", () => {
  const same = (a: string, b: string) => expect(normalizeHttpUri(a)).toEqual(normalizeHttpUri(b)!);
  const differ = (a: string, b: string) => expect(normalizeHttpUri(a)).not.toEqual(normalizeHttpUri(b)!);

  it("drops the default port of the scheme", () => {
    same("https://api.example.com:443/x", "https://api.example.com/x");
    same("http://api.example.com:80/x", "http://api.example.com/x");
    differ("http://api.example.com:443/x", "http://api.example.com/x");
  });

  it("compares scheme and host case-insensitively, but not the path", () => {
    same("HTTPS://API.Example.COM/x", "https://api.example.com/x");
    differ("https://api.example.com/X", "https://api.example.com/x");
  });

  it("decodes percent-encoded unreserved characters and upper-cases the rest", () => {
    same("https://h/%7Euser/%41", "https://h/~user/A");
    same("https://h/caf%c3%a9", "https://h/caf%C3%A9");
    same("https://h/a%2db%2E%5f", "https://h/a-b._");
  });

  it("keeps percent-encoded reserved characters distinct from the characters", () => {
    differ("https://h/a%2Fb", "https://h/a/b");
    differ("https://h/a%3Fb", "https://h/a?b");
  });

  it("removes dot segments and makes an empty path '/'", () => {
    same("https://h/a/./b/../c", "https://h/a/c");
    same("https://h/a/%2e%2E/c", "https://h/c");
    same("https://h", "https://h/");
  });

  it("ignores query and fragment", () => {
    same("https://h/x?a=1#f", "https://h/x");
  });

  it("refuses other schemes, user info and garbage", () => {
    expect(normalizeHttpUri("ftp://h/x")).toBeUndefined();
    expect(normalizeHttpUri("https://user:pw@h/x")).toBeUndefined();
    expect(normalizeHttpUri("/relative")).toBeUndefined();
    expect(normalizeHttpUri("not a url")).toBeUndefined();
  });
});

describe("the origins a proof may name", () => {
  it("are the loopback names at the listener's own scheme and port", () => {
    const origins = createDpopOrigins()({ tls: true, localPort: 8443 });
    expect([...origins].sort()).toEqual(["https://127.0.0.1:8443", "https://[::1]:8443", "https://localhost:8443"]);
  });

  it("drop the default port for the listener's scheme", () => {
    expect(createDpopOrigins()({ tls: false, localPort: 80 }).has("http://localhost")).toBe(true);
  });

  it("include the configured public origins, normalised", () => {
    const origins = createDpopOrigins(["HTTPS://API.example.com:443"])({ tls: false, localPort: 8000 });
    expect(origins.has("https://api.example.com")).toBe(true);
  });

  it("refuse a configured origin with a path or query", () => {
    expect(() => normalizeOrigin("https://api.example.com/base")).toThrow("expected an origin");
    expect(() => normalizeOrigin("https://api.example.com?x")).toThrow("expected an origin");
    expect(normalizeOrigin("https://api.example.com/")).toBe("https://api.example.com");
  });

  it("match htu against the received path whatever Host the caller claimed", () => {
    const origins = createDpopOrigins(["https://api.example.com"])({ tls: false, localPort: 8000 });
    // The received URL's authority comes from the caller's Host header: it is not consulted.
    expect(htuMatches("https://api.example.com/r", "http://evil.example/r", origins)).toBe(true);
    expect(htuMatches("https://evil.example/r", "https://evil.example/r", origins)).toBe(false);
    expect(htuMatches("http://localhost:8000/r/", "http://localhost:8000/r", origins)).toBe(false);
    expect(htuMatches("http://localhost:8000/%72", "http://x/r", origins)).toBe(true);
  });
});
