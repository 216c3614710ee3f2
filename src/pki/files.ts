// File I/O of the PKI: atomic writes (temp file + rename) and reads that fail with the file's name.
import { randomBytes } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { x509 } from "../identity/x509.ts";
import { PkiError } from "./errors.ts";
import type { Issuer } from "./issue.ts";
import { importPrivateKeyPem } from "./keys.ts";
import { pemBlocks } from "./pem.ts";

export const KEY_FILE_MODE = 0o600;

/**
 * Writes through a temp file in the same directory and a rename, so a reader (a gateway reloading its
 * trust store, say) sees the old file or the new one, never half of one. The temp file is created with
 * the final mode, so a key is never readable by others even for a moment.
 */
export function writeFileAtomic(path: string, data: string, mode = 0o644): void {
  const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    writeFileSync(temp, data, { mode, flag: "wx" });
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw new PkiError(
      `${path}: cannot write (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

export function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new PkiError(
      `${path}: ${code === "ENOENT" ? "missing" : `cannot read (${code ?? (err as Error).message})`}`,
    );
  }
}

/** Every certificate of a PEM file, in order; at least one. */
export function readCertificates(path: string): x509.X509Certificate[] {
  const blocks = pemBlocks(readText(path), "CERTIFICATE");
  if (blocks.length === 0) throw new PkiError(`${path}: no PEM certificate found`);
  return blocks.map((der, i) => {
    try {
      return new x509.X509Certificate(der);
    } catch (err) {
      throw new PkiError(`${path}: certificate ${i + 1} is malformed (${(err as Error).message})`);
    }
  });
}

/** The first certificate of a PEM file: the leaf of a chain file. */
export function readCertificate(path: string): x509.X509Certificate {
  const [first] = readCertificates(path);
  if (!first) throw new PkiError(`${path}: no PEM certificate found`);
  return first;
}

export function readCrl(path: string): x509.X509Crl {
  const [der] = pemBlocks(readText(path), "X509 CRL");
  if (!der) throw new PkiError(`${path}: no PEM CRL found`);
  try {
    return new x509.X509Crl(der);
  } catch (err) {
    throw new PkiError(`${path}: malformed CRL (${(err as Error).message})`);
  }
}

/** True when the key pair's public half is the certificate's subject public key. */
export async function keyMatchesCertificate(issuer: Issuer): Promise<boolean> {
  const spki = Buffer.from(await crypto.subtle.exportKey("spki", issuer.keys.publicKey));
  return spki.equals(Buffer.from(issuer.cert.publicKey.rawData));
}

/** A certificate and its private key from two files, checked to belong together. */
export async function readIssuer(certPath: string, keyPath: string): Promise<Issuer> {
  const cert = readCertificate(certPath);
  const { keys, algorithm } = await importPrivateKeyPem(readText(keyPath), keyPath);
  const issuer = { cert, keys, algorithm };
  if (!(await keyMatchesCertificate(issuer))) {
    throw new PkiError(`${keyPath}: does not match the certificate in ${certPath}`);
  }
  return issuer;
}
