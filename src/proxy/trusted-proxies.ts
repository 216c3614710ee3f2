// Which direct peers are proxies whose X-Forwarded-For (and Via) the gateway extends instead of replacing:
// CIDR ranges, IPv4 and IPv6, matched with node:net's BlockList.
import { BlockList, isIPv4, isIPv6 } from "node:net";

/** An IPv4-mapped IPv6 peer (`::ffff:192.0.2.7`, from a dual-stack listener) as the IPv4 address it is. */
export function normalizePeerAddress(address: string | undefined): string {
  if (address === undefined) return "";
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address);
  return mapped?.[1] !== undefined && isIPv4(mapped[1]) ? mapped[1] : address;
}

interface Cidr {
  readonly address: string;
  readonly prefix: number;
  readonly family: "ipv4" | "ipv6";
}

/** `192.0.2.0/24`, `2001:db8::/32`, or a bare address (a /32 or /128); undefined when it is neither. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf("/");
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIPv4(address) ? "ipv4" : isIPv6(address) ? "ipv6" : undefined;
  if (!family) return undefined;
  const max = family === "ipv4" ? 32 : 128;
  if (slash < 0) return { address, prefix: max, family };
  const bits = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return undefined;
  return { address, prefix: Number(bits), family };
}

export class TrustedProxies {
  readonly #list = new BlockList();
  readonly size: number;

  /** Every entry must pass parseCidr (the config schema checks them); a bad one throws. */
  constructor(cidrs: readonly string[] = []) {
    for (const text of cidrs) {
      const cidr = parseCidr(text);
      if (!cidr) throw new Error(`not an IP address or CIDR range: "${text}"`);
      this.#list.addSubnet(cidr.address, cidr.prefix, cidr.family);
    }
    this.size = cidrs.length;
  }

  /** True when the peer (as normalizePeerAddress gives it) is in one of the ranges. */
  has(address: string): boolean {
    if (this.size === 0) return false;
    if (isIPv4(address)) return this.#list.check(address, "ipv4");
    return isIPv6(address) && this.#list.check(address, "ipv6");
  }
}

export const NO_TRUSTED_PROXIES = new TrustedProxies();
