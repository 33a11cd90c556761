/**
 * `client_secret_basic` on the wire (RFC 6749 §2.3.1): id and secret encoded with the WHATWG
 * application/x-www-form-urlencoded serializer, then `id:secret` in base64. oauth4webapi's own
 * encoder also escapes `-._~!*'()`, which IdPs that do not URL-decode (Glewlwyd) read as
 * another secret; this one leaves alphanumerics and `*-._` alone (space is `+`).
 */
import type * as oauth from "oauth4webapi";

/** The form serializer's encoding of one value (the name is empty, hence the `=` dropped). */
export function formUrlEncode(value: string): string {
  return new URLSearchParams([["", value]]).toString().slice(1);
}

/** The `Authorization` header value. */
export function basicCredentials(clientId: string, clientSecret: string): string {
  return `Basic ${btoa(`${formUrlEncode(clientId)}:${formUrlEncode(clientSecret)}`)}`;
}

/** oauth4webapi's `ClientSecretBasic` with the form encoding above. */
export function clientSecretBasic(clientSecret: string): oauth.ClientAuth {
  return (_as, client, _body, headers) => {
    headers.set("authorization", basicCredentials(client.client_id, clientSecret));
  };
}
