/** base64url without padding (RFC 4648 §5): jose's encoder for every digest, thumbprint, nonce and id we print. */
import { base64url as jose } from "jose";

export const base64url = (bytes: Uint8Array): string => jose.encode(bytes);
