// The demo directory's PKI: creates, reuses or repairs every certificate, key, CRL and token of `portcullis demo`.
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { x509 } from "../identity/x509.ts";
import {
  crlIsGood,
  type LeafExpectation,
  leafIsGood,
  readIfPresent,
  sameDer,
  usableCa,
} from "./demo-checks.ts";
import { KEY_FILE_MODE, readCertificate, readCrl, readIssuer, readText, writeFileAtomic } from "./files.ts";
import {
  createCrl,
  createIntermediateCa,
  createRootCa,
  type Issued,
  type Issuer,
  issueDeviceCertificate,
  issueServerCertificate,
  type ValidityOptions,
} from "./issue.ts";
import { toPem } from "./pem.ts";
import { initPki, normalizeSerial, PKI_FILES, type Pki, revoke, writeCrl } from "./store.ts";

/** Absolute paths of the demo files, plus the registered device's id. */
export interface DemoPki {
  dir: string;
  /** The store.ts directory holding the CA keys: `portcullis pki issue --dir <pkiDir>` issues more devices. */
  pkiDir: string;
  caCert: string;
  caChain: string;
  serverCert: string;
  serverKey: string;
  deviceCert: string;
  deviceKey: string;
  wrongCaCert: string;
  wrongDeviceCert: string;
  wrongDeviceKey: string;
  expiredDeviceCert: string;
  expiredDeviceKey: string;
  revokedDeviceCert: string;
  revokedDeviceKey: string;
  unregisteredDeviceCert: string;
  unregisteredDeviceKey: string;
  /** The intermediate's CRL, listing revoked-device. */
  crl: string;
  /** The root's empty CRL: Node's `tls` `crl` option needs one per CA of the chain (`crl: [crl, rootCrl]`). */
  rootCrl: string;
  /**
   * The enrollment (EST) CA, issued by the root: a CA of its own, because the intermediate's CRL is
   * `portcullis pki revoke`'s and the enrollment profile keeps a CRL of its own (one issuer, one CRL file).
   */
  enrollCaCert: string;
  enrollCaKey: string;
  /** The enrollment profile's CRL: the gateway's; written here (empty) when missing or another CA's. */
  enrollCrl: string;
  adminToken: string;
  deviceId: "device-001";
  /** File names (relative to dir) written by this call; empty when everything was reused. */
  written: string[];
}

export const DEMO_SERVER_NAMES = ["localhost", "mtls.auth.local.com", "127.0.0.1"];
const DAY_MS = 24 * 60 * 60 * 1000;
const DEMO_CRL_DAYS = 30;
/** The enrollment profile's CRL file (see demo-config.ts). */
export const ENROLL_CRL = "enroll-crl.pem";
/** nextUpdate of the empty enrollment CRL written here: the profile's crlValidity default. */
const ENROLL_CRL_DAYS = 7;

interface LeafSpec extends LeafExpectation {
  issue: (issuer: Issuer, validity: ValidityOptions) => Promise<Issued>;
}

const device = (deviceId: string) => (issuer: Issuer, v: ValidityOptions) =>
  issueDeviceCertificate(issuer, { deviceId, ...v });

/** Leaves of the trusted intermediate, by file name. */
const LEAVES: Record<string, LeafSpec> = {
  server: { cn: "localhost", issue: (i, v) => issueServerCertificate(i, { names: DEMO_SERVER_NAMES, ...v }) },
  device: { cn: "device-001", issue: device("device-001") },
  "expired-device": { cn: "expired-device", expired: true, issue: device("expired-device") },
  "revoked-device": { cn: "revoked-device", issue: device("revoked-device") },
  "unregistered-device": { cn: "unregistered-device", issue: device("unregistered-device") },
};
// An impostor: the registered device's id under a CA the gateway does not trust, so only trust can reject it.
const WRONG_DEVICE: LeafSpec = { cn: "device-001", issue: device("device-001") };

function validityFor(spec: LeafSpec, now: Date): ValidityOptions {
  const at = (days: number) => new Date(now.getTime() + days * DAY_MS);
  return spec.expired
    ? { notBefore: at(-60), notAfter: at(-30) }
    : { notBefore: new Date(now.getTime() - 5 * 60 * 1000), notAfter: at(365) };
}

/** Writes a demo file unless it already holds exactly this text; records what it wrote. */
class DemoWriter {
  readonly written: string[] = [];
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }
  at(name: string): string {
    return join(this.dir, name);
  }
  put(name: string, text: string, mode?: number): void {
    if (readIfPresent(this.at(name)) === text) return;
    writeFileAtomic(this.at(name), text, mode);
    this.written.push(name);
  }
  leaf(name: string, issued: Issued, chain: x509.X509Certificate | undefined): void {
    this.put(`${name}.key`, issued.keyPem, KEY_FILE_MODE);
    this.put(`${name}.crt`, issued.certPem + (chain ? toPem(chain.rawData, "CERTIFICATE") : ""));
  }
}

async function ensureCa(out: DemoWriter, pkiDir: string, now: Date): Promise<Pki> {
  const existing = await usableCa(pkiDir, now);
  if (existing) return existing;
  for (const file of Object.values(PKI_FILES)) rmSync(join(pkiDir, file), { force: true });
  out.written.push(...Object.values(PKI_FILES).map((f) => `pki/${f}`));
  // Backdated so that expired-device's whole validity lies inside its CA's: it fails only for expiry.
  const notBefore = new Date(now.getTime() - 90 * DAY_MS);
  return initPki(pkiDir, { name: "Portcullis Demo Root CA", now, notBefore });
}

/** The untrusted CA's key is thrown away: when its device needs reissuing, both are made anew. */
async function ensureWrongDevice(
  out: DemoWriter,
  trustedRoot: x509.X509Certificate,
  now: Date,
): Promise<void> {
  let wrongCa: x509.X509Certificate | undefined;
  try {
    wrongCa = readCertificate(out.at("wrong-ca.crt"));
  } catch {
    wrongCa = undefined;
  }
  const good =
    wrongCa !== undefined &&
    !sameDer(wrongCa, trustedRoot) &&
    (await leafIsGood(out.at("wrong-device"), WRONG_DEVICE, wrongCa, undefined, now));
  if (good) return;
  const validity = validityFor(WRONG_DEVICE, now);
  const untrusted = await createRootCa({
    subject: [{ CN: ["Untrusted Demo CA"] }],
    notBefore: validity.notBefore,
  });
  out.leaf("wrong-device", await WRONG_DEVICE.issue(untrusted, validity), undefined);
  out.put("wrong-ca.crt", untrusted.certPem);
}

const ENROLL_CA: LeafExpectation = { cn: "Portcullis Demo Enrollment CA" };

/**
 * The enrollment CA: kept while it still verifies under the root, matches its key and lasts a day; else a
 * new one. Its CRL belongs to the gateway, which rewrites it from the store at start and on every
 * revocation (a stale one included); it is written here, empty, only when missing or not signed by this CA
 * (a wrong-signer CRL would stop the gateway's start), so that `portcullis check` finds it before a start.
 */
async function ensureEnrollCa(out: DemoWriter, pki: Pki, now: Date): Promise<void> {
  const prefix = out.at("enroll-ca");
  let good = await leafIsGood(prefix, ENROLL_CA, pki.root.cert, undefined, now);
  if (good) {
    const ca = readCertificate(`${prefix}.crt`).getExtension(x509.BasicConstraintsExtension);
    good = ca?.ca === true && ca.pathLength === 0;
  }
  if (!good) {
    const issued = await createIntermediateCa(pki.root, {
      subject: [{ CN: [ENROLL_CA.cn] }],
      pathLength: 0,
      notBefore: new Date(now.getTime() - 5 * 60 * 1000),
      // Within the root's validity, as RFC 5280 path validation requires of every certificate it verifies.
      notAfter: new Date(Math.min(now.getTime() + 5 * 365 * DAY_MS, pki.root.cert.notAfter.getTime())),
    });
    out.leaf("enroll-ca", issued, undefined);
  }
  const issuer = await readIssuer(`${prefix}.crt`, `${prefix}.key`);
  if (await crlVerifies(out.at(ENROLL_CRL), issuer)) return;
  const { pem } = await createCrl(issuer, {
    revoked: [],
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + ENROLL_CRL_DAYS * DAY_MS),
    // Numbered as the gateway numbers the CRLs it writes (milliseconds), so that its next one is newer.
    crlNumber: now.getTime(),
  });
  out.put(ENROLL_CRL, pem);
}

async function crlVerifies(path: string, issuer: Issuer): Promise<boolean> {
  try {
    return await readCrl(path).verify({ publicKey: issuer.cert.publicKey });
  } catch {
    return false;
  }
}

/** revoked-device must be on the store's list (so `pki crl --dir <pkiDir>` keeps it) and on the demo CRL. */
async function ensureCrls(out: DemoWriter, pki: Pki, now: Date): Promise<void> {
  const revokedSerial = normalizeSerial(readCertificate(out.at("revoked-device.crt")).serialNumber);
  const crlsAreGood = async (dir: string, p: Pki) =>
    (await crlIsGood(join(dir, PKI_FILES.crl), p.intermediate, revokedSerial, now)) &&
    (await crlIsGood(join(dir, PKI_FILES.rootCrl), p.root, undefined, now));
  if (await crlsAreGood(out.dir, pki)) return;
  if (!pki.revoked.some((e) => e.serialNumber === revokedSerial)) {
    await revoke(pki.dir, { serial: revokedSerial }, "keyCompromise", { now, crlDays: DEMO_CRL_DAYS });
    out.written.push(`pki/${PKI_FILES.revoked}`);
  } else if (!(await crlsAreGood(pki.dir, pki))) {
    await writeCrl(pki.dir, { now, days: DEMO_CRL_DAYS });
  }
  out.put(PKI_FILES.crl, readText(join(pki.dir, PKI_FILES.crl)));
  out.put(PKI_FILES.rootCrl, readText(join(pki.dir, PKI_FILES.rootCrl)));
}

/**
 * Creates or reuses the demo PKI in `dir`. Files that exist, parse and stay valid for a day are kept
 * byte for byte (the admin token too); anything missing or invalid is regenerated, and all of it when
 * the CA itself is missing or broken.
 */
export async function ensureDemoPki(dir: string, opts: { now?: Date } = {}): Promise<DemoPki> {
  const now = opts.now ?? new Date();
  const out = new DemoWriter(resolve(dir));
  const at = (name: string) => out.at(name);
  mkdirSync(out.dir, { recursive: true });

  const pki = await ensureCa(out, join(out.dir, "pki"), now);
  const intermediate = pki.intermediate.cert;
  const caPem = toPem(pki.root.cert.rawData, "CERTIFICATE");
  out.put("ca.crt", caPem);
  out.put("ca-chain.crt", toPem(intermediate.rawData, "CERTIFICATE") + caPem);
  for (const [name, spec] of Object.entries(LEAVES)) {
    if (await leafIsGood(at(name), spec, intermediate, intermediate, now)) continue;
    out.leaf(name, await spec.issue(pki.intermediate, validityFor(spec, now)), intermediate);
  }
  await ensureWrongDevice(out, pki.root.cert, now);
  await ensureCrls(out, pki, now);
  await ensureEnrollCa(out, pki, now);
  if (!/^[0-9a-f]{64}\n$/.test(readIfPresent(at("admin.token")) ?? "")) {
    out.put("admin.token", `${randomBytes(32).toString("hex")}\n`, KEY_FILE_MODE);
  }

  return {
    dir: out.dir,
    pkiDir: pki.dir,
    caCert: at("ca.crt"),
    caChain: at("ca-chain.crt"),
    serverCert: at("server.crt"),
    serverKey: at("server.key"),
    deviceCert: at("device.crt"),
    deviceKey: at("device.key"),
    wrongCaCert: at("wrong-ca.crt"),
    wrongDeviceCert: at("wrong-device.crt"),
    wrongDeviceKey: at("wrong-device.key"),
    expiredDeviceCert: at("expired-device.crt"),
    expiredDeviceKey: at("expired-device.key"),
    revokedDeviceCert: at("revoked-device.crt"),
    revokedDeviceKey: at("revoked-device.key"),
    unregisteredDeviceCert: at("unregistered-device.crt"),
    unregisteredDeviceKey: at("unregistered-device.key"),
    crl: at("crl.pem"),
    rootCrl: at("root-crl.pem"),
    enrollCaCert: at("enroll-ca.crt"),
    enrollCaKey: at("enroll-ca.key"),
    enrollCrl: at(ENROLL_CRL),
    adminToken: at("admin.token"),
    deviceId: "device-001",
    written: out.written,
  };
}
