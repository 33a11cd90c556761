/**
 * IP addresses and CIDR ranges (IPv4 and IPv6), for `[server] trusted_ips`: parsed once at
 * start into numbers, matched per request without allocation beyond the address's parse.
 */

/** An address as 128 bits (IPv4 as IPv4-mapped IPv6), or undefined when it is not an IP. */
export function parseIp(text: string): bigint | undefined {
  let s = text.trim();
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  const v4 = parseIpv4(s);
  if (v4 !== undefined) return 0xffff00000000n | BigInt(v4);
  return parseIpv6(s);
}

function parseIpv4(s: string): number | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const v = Number(p);
    if (v > 255) return undefined;
    n = n * 256 + v;
  }
  return n;
}

function parseIpv6(s: string): bigint | undefined {
  if (!s.includes(":") || !/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const group = (h: string): number[] | undefined => {
    if (h === "") return [];
    const out: number[] = [];
    const items = h.split(":");
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (i === items.length - 1 && item.includes(".")) {
        const v4 = parseIpv4(item);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(item)) out.push(parseInt(item, 16));
      else return undefined;
    }
    return out;
  };
  const head = group(halves[0]!);
  const tail = halves.length === 2 ? group(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 2 && missing < 1) || (halves.length === 1 && missing !== 0)) return undefined;
  let n = 0n;
  for (const g of [...head, ...new Array<number>(missing).fill(0), ...tail]) n = (n << 16n) | BigInt(g);
  return n;
}

export interface CidrRange {
  readonly base: bigint;
  readonly mask: bigint;
}

const ALL = (1n << 128n) - 1n;

/** `10.0.0.0/8`, `::1`, `fd00::/8`, or a plain address (a /32 or /128); undefined when invalid. */
export function parseCidr(text: string): CidrRange | undefined {
  const [addr, bits, extra] = text.trim().split("/");
  if (extra !== undefined || !addr) return undefined;
  const ip = parseIp(addr);
  if (ip === undefined) return undefined;
  const v4 = parseIpv4(addr) !== undefined;
  const max = v4 ? 32 : 128;
  if (bits !== undefined && !/^\d{1,3}$/.test(bits)) return undefined;
  const prefix = bits === undefined ? max : Number(bits);
  if (prefix > max) return undefined;
  const hostBits = BigInt(max - prefix);
  const mask = (ALL >> hostBits) << hostBits;
  return { base: ip & mask, mask };
}

/** True when `address` falls in one of `ranges`. */
export function inRanges(address: string, ranges: readonly CidrRange[]): boolean {
  if (!ranges.length) return false;
  const ip = parseIp(address);
  if (ip === undefined) return false;
  for (const r of ranges) if ((ip & r.mask) === r.base) return true;
  return false;
}
