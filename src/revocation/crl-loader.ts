// Reading a CRL file or HTTP body and checking each CRL against the CAs that may have signed it.
import { readFile, stat } from "node:fs/promises";
import type { Certificate } from "../identity/certificate.ts";
import { CrlParseError, crlSignatureProblem, type ParsedCrl, parseCrls } from "../identity/revocation/crl.ts";
import { RevocationSourceError } from "./errors.ts";

export interface LoadedCrls {
  readonly crls: readonly ParsedCrl[];
  /** Doubts that do not reject the input: a stale CRL, an issuer the trust stores do not hold. */
  readonly warnings: readonly string[];
}

/** What identifies a file's version without reading it: a change of any of these triggers a reload. */
export interface FileVersion {
  readonly mtimeMs: number;
  readonly size: number;
  readonly ino: number;
}

/**
 * Parses `data` and checks every CRL against `cas`: a CRL that names one of them must be signed by it (a
 * wrong-signer CRL is rejected, not ignored). A CRL of an issuer outside `cas` is kept, with a warning:
 * the snapshot uses it only for a chain whose issuer's key verifies it (e.g. a client-sent intermediate).
 */
export function checkCrls(
  data: Uint8Array,
  source: string,
  cas: readonly Certificate[],
  now: Date,
): LoadedCrls {
  let crls: ParsedCrl[];
  try {
    crls = parseCrls(data, source);
  } catch (err) {
    if (err instanceof CrlParseError) throw new RevocationSourceError(err.message);
    throw err;
  }
  const warnings: string[] = [];
  for (const crl of crls) {
    const named = cas.filter((ca) => ca.subjectDer.equals(crl.issuerDer));
    if (named.length === 0) {
      warnings.push(`${crl.source}: issuer "${crl.issuer}" is not a CA of the trust store`);
    } else {
      const problems = named.map((ca) => crlSignatureProblem(crl, ca));
      if (!problems.includes(undefined)) {
        throw new RevocationSourceError(`${crl.source}: ${problems.join("; ")}`);
      }
    }
    if (crl.nextUpdate !== undefined && crl.nextUpdate.getTime() < now.getTime()) {
      warnings.push(`${crl.source}: stale, its nextUpdate ${crl.nextUpdate.toISOString()} has passed`);
    }
  }
  return { crls, warnings };
}

/** Loads one CRL file (PEM with several CRLs, or DER); throws RevocationSourceError naming the file. */
export async function load(
  path: string,
  cas: readonly Certificate[],
  now: Date,
): Promise<LoadedCrls & { readonly version: FileVersion }> {
  let data: Buffer;
  let version: FileVersion;
  try {
    const before = await stat(path);
    data = await readFile(path);
    version = { mtimeMs: before.mtimeMs, size: before.size, ino: before.ino };
  } catch (err) {
    throw new RevocationSourceError(`CRL file ${path}: ${(err as Error).message}`);
  }
  return { ...checkCrls(data, `CRL file ${path}`, cas, now), version };
}
