// What `portcullis pki issue` accepts as a server name or a device id, checked before any key is made or
// file written. Server names go into the subjectAltName: IP literals as iPAddress entries, everything else
// as a dNSName, which RFC 5280 (§4.2.1.6) requires in the preferred name syntax: letters, digits and
// hyphens in dot-separated labels. Device ids follow the registry's syntax, so that the certificate's CN
// and `urn:device:ID` name a device the admin API can hold.
import { isIP } from "node:net";
import { DEVICE_ID_EXPECTED, DEVICE_ID_PATTERN } from "../admin/validation.ts";

/** One label: 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen. */
const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const MAX_NAME = 253;

/**
 * Why `name` cannot be a server certificate name, or undefined when it can. A leading `*.` (one whole
 * label, as TLS clients and the gateway's SNI choice match it) is accepted in front of at least two labels.
 */
export function serverNameProblem(name: string): string | undefined {
  const version = isIP(name);
  if (version !== 0) {
    return name.includes("%")
      ? `${JSON.stringify(name)}: an IPv6 zone (%…) cannot be in a certificate; give the address alone`
      : undefined;
  }
  const expected =
    'expected a DNS name (letters, digits and hyphens in dot-separated labels of at most 63 characters, optionally "*." first) or an IP address';
  const wildcard = name.startsWith("*.");
  const host = wildcard ? name.slice(2) : name;
  const labels = host.split(".");
  if (host.length === 0 || host.length > MAX_NAME || !labels.every((label) => LABEL.test(label))) {
    return `${JSON.stringify(name)}: ${expected}`;
  }
  if (/^\d+$/.test(labels[labels.length - 1] ?? "")) {
    return `${JSON.stringify(name)}: neither an IP address nor a DNS name (a DNS name does not end in a numeric label)`;
  }
  if (wildcard && labels.length < 2) {
    return `${JSON.stringify(name)}: a wildcard needs at least two labels after "*." (e.g. *.example.com)`;
  }
  return undefined;
}

/** Why `id` cannot be a device id, or undefined when it can. */
export function deviceIdProblem(id: string): string | undefined {
  return DEVICE_ID_PATTERN.test(id) ? undefined : `device id ${JSON.stringify(id)}: ${DEVICE_ID_EXPECTED}`;
}
