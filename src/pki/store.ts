// The on-disk PKI directory behind `portcullis pki`: a root and an intermediate CA, a revocation list, a CRL.
import { X509Certificate as NodeX509 } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import type { x509 } from "../identity/x509.ts";
import { PkiError } from "./errors.ts";
import { KEY_FILE_MODE, readCertificate, readIssuer, readText, writeFileAtomic } from "./files.ts";
import {
  createCrl,
  createIntermediateCa,
  createRootCa,
  crlReasonCode,
  type Issued,
  type Issuer,
  issueDeviceCertificate,
  issueServerCertificate,
  type RevokedEntry,
} from "./issue.ts";
import type { KeyAlgorithm } from "./keys.ts";
import { toPem } from "./pem.ts";

export const PKI_FILES = {
  rootCert: "root.crt",
  rootKey: "root.key",
  intermediateCert: "intermediate.crt",
  intermediateKey: "intermediate.key",
  chain: "ca-chain.crt",
  revoked: "revoked.json",
  crl: "crl.pem",
  /** The root's (empty) CRL: OpenSSL-based verifiers with CRL checking on (Node's `tls` `crl` option checks
   * every CA of the chain) need one for the intermediate as well. */
  rootCrl: "root-crl.pem",
} as const;

export interface Pki {
  /** Absolute path of the directory. */
  dir: string;
  root: Issuer;
  intermediate: Issuer;
  revoked: RevokedEntry[];
}

export interface InitOptions {
  algorithm?: KeyAlgorithm;
  /** CN of the root; default "Portcullis Root CA". */
  name?: string;
  now?: Date;
  /** Start of the CAs' validity; default now minus 5 minutes. */
  notBefore?: Date;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const BACKDATE_MS = 5 * 60 * 1000;
export const DEFAULT_CRL_DAYS = 30;

const pathOf = (dir: string, file: keyof typeof PKI_FILES) => join(dir, PKI_FILES[file]);

/** Lower-case hex without separators or leading zero bytes: the one form serials are compared in. */
export function normalizeSerial(serial: string): string {
  const hex = serial.replace(/[\s:]/g, "").toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex)) throw new PkiError(`"${serial}" is not a hexadecimal serial number`);
  const trimmed = hex.replace(/^0+/, "") || "0";
  return trimmed.length % 2 ? `0${trimmed}` : trimmed;
}

function intermediateName(rootName: string): string {
  return /\bRoot\b/.test(rootName)
    ? rootName.replace(/\bRoot\b/, "Intermediate")
    : `${rootName} Intermediate`;
}

function chainPem(pki: Pick<Pki, "root" | "intermediate">): string {
  return toPem(pki.intermediate.cert.rawData, "CERTIFICATE") + toPem(pki.root.cert.rawData, "CERTIFICATE");
}

function writeRevoked(dir: string, revoked: readonly RevokedEntry[]): void {
  const json = revoked.map((e) => ({
    serialNumber: e.serialNumber,
    revokedAt: e.revokedAt.toISOString(),
    reason: e.reason ?? "unspecified",
  }));
  writeFileAtomic(pathOf(dir, "revoked"), `${JSON.stringify(json, null, 2)}\n`);
}

function readRevoked(dir: string): RevokedEntry[] {
  const path = pathOf(dir, "revoked");
  const text = readText(path);
  const corrupt = (why: string) => new PkiError(`${path}: corrupt (${why})`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw corrupt((err as Error).message);
  }
  if (!Array.isArray(data)) throw corrupt("expected a JSON array");
  return data.map((item: unknown, i) => {
    const e = item as { serialNumber?: unknown; revokedAt?: unknown; reason?: unknown } | null;
    if (typeof e?.serialNumber !== "string" || typeof e.revokedAt !== "string") {
      throw corrupt(`entry ${i + 1} needs serialNumber and revokedAt strings`);
    }
    const revokedAt = new Date(e.revokedAt);
    if (Number.isNaN(revokedAt.getTime())) throw corrupt(`entry ${i + 1}: bad revokedAt date`);
    const reason = typeof e.reason === "string" ? e.reason : undefined;
    if (reason !== undefined) crlReasonCode(reason);
    return { serialNumber: normalizeSerial(e.serialNumber), revokedAt, reason };
  });
}

async function writeCrlFile(pki: Pki, path: string, days: number, now: Date): Promise<x509.X509Crl> {
  const nextUpdate = new Date(now.getTime() + days * DAY_MS);
  const { crl, pem } = await createCrl(pki.intermediate, {
    revoked: pki.revoked,
    thisUpdate: now,
    nextUpdate,
  });
  writeFileAtomic(path, pem);
  return crl;
}

/** crl.pem and root-crl.pem of the directory, valid for `days`. */
async function writeDirCrls(pki: Pki, days: number, now: Date): Promise<x509.X509Crl> {
  const nextUpdate = new Date(now.getTime() + days * DAY_MS);
  const root = await createCrl(pki.root, { revoked: [], thisUpdate: now, nextUpdate });
  writeFileAtomic(pathOf(pki.dir, "rootCrl"), root.pem);
  return writeCrlFile(pki, pathOf(pki.dir, "crl"), days, now);
}

/** Creates a root and an intermediate CA in `dir` (created 0700). Refuses to overwrite an existing PKI. */
export async function initPki(dir: string, opts: InitOptions = {}): Promise<Pki> {
  const abs = resolve(dir);
  if (existsSync(pathOf(abs, "rootKey"))) {
    throw new PkiError(`${pathOf(abs, "rootKey")}: already exists; refusing to overwrite a PKI`);
  }
  mkdirSync(abs, { recursive: true, mode: 0o700 });
  const now = opts.now ?? new Date();
  const notBefore = opts.notBefore ?? new Date(now.getTime() - BACKDATE_MS);
  const name = opts.name ?? "Portcullis Root CA";
  const root = await createRootCa({ subject: [{ CN: [name] }], algorithm: opts.algorithm, notBefore });
  const intermediate = await createIntermediateCa(root, {
    subject: [{ CN: [intermediateName(name)] }],
    algorithm: opts.algorithm,
    notBefore,
  });
  const pki: Pki = { dir: abs, root, intermediate, revoked: [] };
  // Keys first: a crash leaves no certificate without its key.
  writeFileAtomic(pathOf(abs, "rootKey"), root.keyPem, KEY_FILE_MODE);
  writeFileAtomic(pathOf(abs, "intermediateKey"), intermediate.keyPem, KEY_FILE_MODE);
  writeFileAtomic(pathOf(abs, "rootCert"), root.certPem);
  writeFileAtomic(pathOf(abs, "intermediateCert"), intermediate.certPem);
  writeFileAtomic(pathOf(abs, "chain"), chainPem(pki));
  writeRevoked(abs, []);
  await writeDirCrls(pki, DEFAULT_CRL_DAYS, now);
  return pki;
}

/** Reads a PKI directory; every error names the missing or corrupt file. */
export async function loadPki(dir: string): Promise<Pki> {
  const abs = resolve(dir);
  const root = await readIssuer(pathOf(abs, "rootCert"), pathOf(abs, "rootKey"));
  const intermediate = await readIssuer(pathOf(abs, "intermediateCert"), pathOf(abs, "intermediateKey"));
  const rootNode = new NodeX509(Buffer.from(root.cert.rawData));
  const intermediateNode = new NodeX509(Buffer.from(intermediate.cert.rawData));
  if (!intermediateNode.checkIssued(rootNode) || !intermediateNode.verify(rootNode.publicKey)) {
    throw new PkiError(`${pathOf(abs, "intermediateCert")}: not issued by ${pathOf(abs, "rootCert")}`);
  }
  return { dir: abs, root, intermediate, revoked: readRevoked(abs) };
}

export type IssueRequest =
  | { kind: "device"; deviceId: string }
  | { kind: "server"; names: string[]; commonName?: string };

export interface IssueFileOptions {
  /** Path prefix of the two files; default `<dir>/<device id or first name>`. */
  out?: string;
  /** Validity in days; default 1 year. Never beyond the intermediate's own expiry. */
  days?: number;
  algorithm?: KeyAlgorithm;
  /** Overwrite existing files. */
  force?: boolean;
  now?: Date;
}

export interface IssuedFiles {
  certPath: string;
  keyPath: string;
  issued: Issued;
  serialNumber: string;
}

function safeFileName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\./, "_");
}

/** Issues a leaf from the intermediate to `<out>.crt` (leaf + intermediate, the chain clients send) and `<out>.key`. */
export async function issueToFiles(
  pki: Pki,
  request: IssueRequest,
  opts: IssueFileOptions = {},
): Promise<IssuedFiles> {
  const label = request.kind === "device" ? request.deviceId : request.names[0];
  if (!label)
    throw new PkiError(request.kind === "device" ? "device id must not be empty" : "a name is required");
  const prefix = resolve(opts.out ?? join(pki.dir, safeFileName(label)));
  const certPath = `${prefix}.crt`;
  const keyPath = `${prefix}.key`;
  for (const path of [certPath, keyPath]) {
    if (!opts.force && existsSync(path)) throw new PkiError(`${path}: already exists (use --out or --force)`);
  }
  const now = opts.now ?? new Date();
  const notBefore = new Date(now.getTime() - BACKDATE_MS);
  let notAfter = opts.days === undefined ? undefined : new Date(now.getTime() + opts.days * DAY_MS);
  if (notAfter && notAfter > pki.intermediate.cert.notAfter) notAfter = pki.intermediate.cert.notAfter;
  const validity = { notBefore, notAfter, algorithm: opts.algorithm };
  const issued =
    request.kind === "device"
      ? await issueDeviceCertificate(pki.intermediate, { deviceId: request.deviceId, ...validity })
      : await issueServerCertificate(pki.intermediate, {
          names: request.names,
          commonName: request.commonName,
          ...validity,
        });
  writeFileAtomic(keyPath, issued.keyPem, KEY_FILE_MODE);
  writeFileAtomic(certPath, issued.certPem + toPem(pki.intermediate.cert.rawData, "CERTIFICATE"));
  return { certPath, keyPath, issued, serialNumber: normalizeSerial(issued.cert.serialNumber) };
}

export type RevokeTarget = { serial: string } | { certFile: string };

/** Adds a serial to revoked.json and regenerates crl.pem. Revoking twice keeps the first entry. */
export async function revoke(
  dir: string,
  target: RevokeTarget,
  reason = "unspecified",
  opts: { now?: Date; crlDays?: number } = {},
): Promise<{ serialNumber: string; alreadyRevoked: boolean; crlPath: string }> {
  crlReasonCode(reason);
  const pki = await loadPki(dir);
  let serialNumber: string;
  if ("serial" in target) {
    serialNumber = normalizeSerial(target.serial);
  } else {
    const cert = readCertificate(target.certFile);
    const leaf = new NodeX509(Buffer.from(cert.rawData));
    const issuer = new NodeX509(Buffer.from(pki.intermediate.cert.rawData));
    if (!leaf.checkIssued(issuer) || !leaf.verify(issuer.publicKey)) {
      throw new PkiError(`${target.certFile}: not issued by ${pathOf(pki.dir, "intermediateCert")}`);
    }
    serialNumber = normalizeSerial(cert.serialNumber);
  }
  const now = opts.now ?? new Date();
  const alreadyRevoked = pki.revoked.some((e) => e.serialNumber === serialNumber);
  if (!alreadyRevoked) {
    pki.revoked.push({ serialNumber, revokedAt: now, reason });
    writeRevoked(pki.dir, pki.revoked);
  }
  await writeDirCrls(pki, opts.crlDays ?? DEFAULT_CRL_DAYS, now);
  return { serialNumber, alreadyRevoked, crlPath: pathOf(pki.dir, "crl") };
}

/**
 * Signs a fresh CRL of revoked.json, valid for `days` (default 30): to `out` when given, else to
 * `<dir>/crl.pem`, together with a fresh `<dir>/root-crl.pem`.
 */
export async function writeCrl(
  dir: string,
  opts: { days?: number; out?: string; now?: Date } = {},
): Promise<{ path: string; crl: x509.X509Crl }> {
  const pki = await loadPki(dir);
  const days = opts.days ?? DEFAULT_CRL_DAYS;
  const now = opts.now ?? new Date();
  if (opts.out === undefined)
    return { path: pathOf(pki.dir, "crl"), crl: await writeDirCrls(pki, days, now) };
  const path = resolve(opts.out);
  return { path, crl: await writeCrlFile(pki, path, days, now) };
}
