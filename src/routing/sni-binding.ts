// SNI/Host binding: a request must name the host its TLS connection was made for. This closes the
// connection-reuse and domain-fronting bypasses of application-mode mTLS (answered with 421).
import { isIpLiteral } from "./names.ts";

/**
 * True when a request for `host` may be served on a connection whose client sent `sni` (both normalised).
 * With SNI the names must be equal; without SNI only IP-literal hosts are served, since no name was bound.
 */
export function sniAllowsHost(sni: string | undefined, host: string): boolean {
  return sni === undefined ? isIpLiteral(host) : sni === host;
}
