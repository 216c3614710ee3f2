// Checks that decide whether a file of the demo directory can be reused as it is or must be regenerated.
import { X509Certificate as NodeX509 } from "node:crypto";
import type { x509 } from "../identity/x509.ts";
import { readCertificates, readCrl, readIssuer, readText } from "./files.ts";
import type { Issuer } from "./issue.ts";
import { loadPki, normalizeSerial, type Pki } from "./store.ts";

/** Reused certificates and CRLs must stay valid this long, so a demo started now does not expire mid-run. */
export const MIN_REMAINING_MS = 24 * 60 * 60 * 1000;

export interface LeafExpectation {
  /** The device id, or the server's CN. */
  cn: string;
  /** The certificate must be expired instead of valid. */
  expired?: boolean;
}

function issuedBy(cert: x509.X509Certificate, issuer: x509.X509Certificate): boolean {
  const leaf = new NodeX509(Buffer.from(cert.rawData));
  const ca = new NodeX509(Buffer.from(issuer.rawData));
  return leaf.checkIssued(ca) && leaf.verify(ca.publicKey);
}

export function sameDer(a: x509.X509Certificate | undefined, b: x509.X509Certificate): boolean {
  return a !== undefined && Buffer.from(a.rawData).equals(Buffer.from(b.rawData));
}

const lastsADay = (notAfter: Date | undefined, now: Date) =>
  notAfter !== undefined && notAfter.getTime() - now.getTime() >= MIN_REMAINING_MS;

/**
 * True when `<prefix>.crt` and `<prefix>.key` exist, belong together and fit the expectation. `chain` is
 * the certificate expected after the leaf: leaves of our intermediate carry it so that clients send it.
 */
export async function leafIsGood(
  prefix: string,
  expect: LeafExpectation,
  issuer: x509.X509Certificate,
  chain: x509.X509Certificate | undefined,
  now: Date,
): Promise<boolean> {
  try {
    const [leaf, next] = readCertificates(`${prefix}.crt`);
    await readIssuer(`${prefix}.crt`, `${prefix}.key`);
    if (!leaf || !issuedBy(leaf, issuer) || leaf.subjectName.getField("CN")[0] !== expect.cn) return false;
    if (chain && !sameDer(next, chain)) return false;
    if (expect.expired) return leaf.notAfter < now;
    return leaf.notBefore <= now && lastsADay(leaf.notAfter, now);
  } catch {
    return false;
  }
}

/** The stored CA when it loads and stays valid; undefined means "regenerate everything". */
export async function usableCa(pkiDir: string, now: Date): Promise<Pki | undefined> {
  try {
    const pki = await loadPki(pkiDir);
    const current = [pki.root.cert, pki.intermediate.cert].every(
      (ca) => ca.notBefore <= now && lastsADay(ca.notAfter, now),
    );
    return current ? pki : undefined;
  } catch {
    return undefined;
  }
}

/** True when the CRL verifies with the issuer's key, is current for another day and lists `mustList`. */
export async function crlIsGood(
  path: string,
  issuer: Issuer,
  mustList: string | undefined,
  now: Date,
): Promise<boolean> {
  try {
    const crl = readCrl(path);
    if (!(await crl.verify({ publicKey: issuer.cert.publicKey }))) return false;
    if (crl.thisUpdate > now || !lastsADay(crl.nextUpdate, now)) return false;
    return mustList === undefined || crl.entries.some((e) => normalizeSerial(e.serialNumber) === mustList);
  } catch {
    return false;
  }
}

/** The file's text, or undefined when it cannot be read. */
export function readIfPresent(path: string): string | undefined {
  try {
    return readText(path);
  } catch {
    return undefined;
  }
}
