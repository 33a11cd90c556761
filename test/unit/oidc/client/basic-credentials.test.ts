/**
 * The Basic header the gateway sends as an OAuth client (RFC 6749 §2.3.1): id and secret
 * encoded with the application/x-www-form-urlencoded serializer, so the common secret
 * alphabet (alphanumerics and `*-._`) goes byte-identical to IdPs that do not URL-decode
 * (Glewlwyd), and IdPs that decode (Keycloak, oidc-provider) read the Appendix B cases right.
 */
import { describe, expect, it } from "bun:test";
import { basicCredentials, clientSecretBasic, formUrlEncode } from "../../../../src/oidc/client/basic-credentials.ts";

const decodeForm = (s: string) => decodeURIComponent(s.replaceAll("+", " "));

describe("form-encoding of Basic credentials", () => {
  it("leaves alphanumerics and *-._ alone, so a UUID secret goes byte-identical", () => {
    expect(formUrlEncode("cf4c655a-0622-4ce6-a0de-d3353ef0b714")).toBe("cf4c655a-0622-4ce6-a0de-d3353ef0b714");
    expect(formUrlEncode("a*b-c.d_e")).toBe("a*b-c.d_e");
  });

  it.each([
    [":", "%3A"],
    ["%", "%25"],
    ["+", "%2B"],
    [" ", "+"],
    ["é", "%C3%A9"],
    ["€", "%E2%82%AC"],
    ["~!'()", "%7E%21%27%28%29"],
  ])("encodes the RFC 6749 Appendix B case %p as %p", (raw, encoded) => {
    expect(formUrlEncode(raw)).toBe(encoded);
    expect(decodeForm(formUrlEncode(raw))).toBe(raw);
  });

  it("joins the encoded id and secret with a colon, base64", () => {
    expect(basicCredentials("service", "cf4c655a-0622-4ce6-a0de-d3353ef0b714")).toBe(`Basic ${btoa("service:cf4c655a-0622-4ce6-a0de-d3353ef0b714")}`);
    expect(atob(basicCredentials("my client", "p+w:d é").slice(6))).toBe("my+client:p%2Bw%3Ad+%C3%A9");
  });

  it("is what the client authentication sets on the request", () => {
    const headers = new Headers();
    clientSecretBasic("s3cret-value")({ issuer: "https://idp.example" }, { client_id: "service" }, new URLSearchParams(), headers);
    expect(headers.get("authorization")).toBe(`Basic ${btoa("service:s3cret-value")}`);
  });
});
