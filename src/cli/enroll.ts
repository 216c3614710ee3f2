// `portcullis enroll` and `portcullis reenroll`: a device's side of EST (RFC 7030). A new key and a CSR are
// made here, the certificate comes from the server, and the key is written only once it has: a refused or
// pending enrollment leaves DIR as it was. Exit 0 enrolled, 1 refused or failed, 2 usage, 75 pending.
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type EnrollResult, EstClient, type EstClientOptions, EstError } from "../enrollment/est-client.ts";
import { x509 } from "../identity/x509.ts";
import { PkiError } from "../pki/errors.ts";
import { KEY_FILE_MODE, readIssuer, writeFileAtomic } from "../pki/files.ts";
import { deviceUri } from "../pki/issue.ts";
import {
  type CryptoKeyPair,
  DEFAULT_KEY_ALGORITHM,
  exportPrivateKeyPem,
  generateKeyPair,
  isKeyAlgorithm,
  KEY_ALGORITHMS,
  type KeyAlgorithm,
  signingAlgorithm,
} from "../pki/keys.ts";
import { deviceIdProblem } from "../pki/names.ts";
import { toPem } from "../pki/pem.ts";
import { UsageError } from "./usage.ts";

export interface EnrollIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Waits between two attempts of a pending enrollment (tests shorten it). */
  sleep: (ms: number) => Promise<void>;
}

const processIo: EnrollIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

const SAN_OID = "2.5.29.17";

/** EX_TEMPFAIL (sysexits.h): pending manual approval, try again later. */
export const EXIT_PENDING = 75;

const COMMON = {
  server: { type: "string" },
  label: { type: "string" },
  ca: { type: "string" },
  out: { type: "string" },
  "key-type": { type: "string" },
  wait: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const ENROLL_OPTIONS = {
  ...COMMON,
  token: { type: "string" },
  "factory-cert": { type: "string" },
  "factory-key": { type: "string" },
  id: { type: "string" },
} as const;

const REENROLL_OPTIONS = { ...COMMON, cert: { type: "string" }, key: { type: "string" } } as const;

type Values = Record<string, string | boolean | undefined>;

function parse(
  argv: string[],
  options: Record<string, { type: "string" | "boolean"; short?: string }>,
): Values {
  const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  return values as Values;
}

function str(values: Values, name: string): string | undefined {
  const value = values[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") throw new UsageError(`--${name} needs a value`);
  return value;
}

function required(values: Values, name: string, command: string): string {
  const value = str(values, name);
  if (value === undefined) throw new UsageError(`${command} needs --${name}`);
  return value;
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

function serverUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--server must be an https URL, got "${text}"`);
  }
  if (url.protocol !== "https:") throw new UsageError(`--server must be an https URL, got "${text}"`);
  return url;
}

function keyType(values: Values, fallback: KeyAlgorithm): KeyAlgorithm {
  const value = str(values, "key-type");
  if (value === undefined) return fallback;
  if (!isKeyAlgorithm(value)) throw new UsageError(`--key-type must be one of ${KEY_ALGORITHMS.join(", ")}`);
  return value;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** --wait: 0, or a whole number with a unit (500ms, 30s, 10m, 1h, 1d); a bare number would be ambiguous. */
export function parseWait(text: string | undefined): number {
  if (text === undefined || text === "0") return 0;
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (!match) throw new UsageError(`--wait must be 0 or a duration such as 30s, 10m or 1h, got "${text}"`);
  return Number(match[1]) * (UNITS[match[2] ?? "s"] ?? 1000);
}

/** --out: a directory, or a path where one can be made; made when the certificate arrives. */
function outDir(values: Values, command: string): string {
  const dir = required(values, "out", command);
  if (existsSync(dir) && !statSync(dir).isDirectory())
    throw new UsageError(`--out ${dir} is not a directory`);
  return dir;
}

function client(options: EstClientOptions): EstClient {
  try {
    return new EstClient(options);
  } catch (err) {
    if (err instanceof EstError) throw new UsageError(err.message);
    throw err;
  }
}

/** A PKCS#10 request signed with the new key; the DER. */
async function buildCsr(
  name: x509.Name | x509.JsonName,
  extensions: x509.Extension[],
  keys: CryptoKeyPair,
  algorithm: KeyAlgorithm,
): Promise<Uint8Array> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name,
    extensions,
    keys,
    signingAlgorithm: signingAlgorithm(algorithm),
  });
  return new Uint8Array(csr.rawData);
}

/**
 * Sends the request until it is issued or refused; a pending answer is retried after its Retry-After while
 * that falls within `waitMs` of the start. The last answer is returned.
 */
async function untilDecided(
  send: () => Promise<EnrollResult>,
  waitMs: number,
  io: EnrollIo,
): Promise<EnrollResult> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const result = await send();
    if (result.kind !== "pending") return result;
    const delay = result.retryAfterSeconds * 1000;
    if (Date.now() + delay > deadline) return result;
    io.stderr(`pending approval, retrying in ${result.retryAfterSeconds} s\n`);
    await io.sleep(delay);
  }
}

interface Enrollment {
  readonly client: EstClient;
  readonly send: (client: EstClient, csr: Uint8Array) => Promise<EnrollResult>;
  readonly csr: Uint8Array;
  readonly keys: CryptoKeyPair;
  readonly deviceId: string;
  readonly dir: string;
  readonly waitMs: number;
  /** What the success line says: "enrolled" or "renewed". */
  readonly done: string;
}

/** The first certificate for the new key: the leaf, whatever else the server sent along. */
async function leafFor(
  certificates: readonly Uint8Array[],
  keys: CryptoKeyPair,
): Promise<x509.X509Certificate> {
  const spki = Buffer.from(await crypto.subtle.exportKey("spki", keys.publicKey));
  for (const der of certificates) {
    const cert = new x509.X509Certificate(der);
    if (spki.equals(Buffer.from(cert.publicKey.rawData))) return cert;
  }
  throw new EstError(200, "the server answered with no certificate for the requested key");
}

/** CA certificates, then the enrollment; on issue, the key, certificate and CA files. Returns the exit code. */
async function enroll(job: Enrollment, io: EnrollIo): Promise<number> {
  try {
    // Asked first (RFC 7030 §4.1.1): a server we cannot use fails before a token is spent.
    const caCerts = await job.client.cacerts();
    const result = await untilDecided(() => job.send(job.client, job.csr), job.waitMs, io);
    if (result.kind === "pending") {
      io.stdout(`pending approval, retry after ${result.retryAfterSeconds} s\n`);
      return EXIT_PENDING;
    }
    if (result.kind === "refused") {
      io.stderr(`portcullis: enrollment refused (HTTP ${result.status}): ${result.reason}\n`);
      return 1;
    }
    const leaf = await leafFor(result.certificates, job.keys);
    mkdirSync(job.dir, { recursive: true });
    const keyPath = join(job.dir, `${job.deviceId}.key`);
    const certPath = join(job.dir, `${job.deviceId}.crt`);
    const caPath = join(job.dir, "ca.pem");
    writeFileAtomic(keyPath, await exportPrivateKeyPem(job.keys.privateKey), KEY_FILE_MODE);
    writeFileAtomic(certPath, toPem(leaf.rawData, "CERTIFICATE"));
    writeFileAtomic(caPath, caCerts.map((der) => toPem(der, "CERTIFICATE")).join(""));
    io.stdout(
      `${job.done} ${job.deviceId}: certificate ${certPath}, key ${keyPath}, CA certificates ${caPath}\n` +
        `  serial ${leaf.serialNumber}, valid until ${leaf.notAfter.toISOString()}\n`,
    );
    return 0;
  } catch (err) {
    if (!(err instanceof EstError || err instanceof PkiError)) throw err;
    io.stderr(`portcullis: ${err.message}\n`);
    return 1;
  }
}

/** `portcullis enroll …`: a first certificate, with an enrollment token or a factory certificate. */
export async function runEnroll(argv: string[], io: EnrollIo = processIo): Promise<number> {
  const values = parse(argv, ENROLL_OPTIONS);
  const command = "enroll";
  const server = serverUrl(required(values, "server", command));
  const deviceId = required(values, "id", command);
  const problem = deviceIdProblem(deviceId);
  if (problem) throw new UsageError(`--id: ${problem}`);
  const dir = outDir(values, command);
  const algorithm = keyType(values, DEFAULT_KEY_ALGORITHM);
  const waitMs = parseWait(str(values, "wait"));
  const token = str(values, "token");
  const factoryCert = str(values, "factory-cert");
  const factoryKey = str(values, "factory-key");
  if (Boolean(factoryCert) !== Boolean(factoryKey)) {
    throw new UsageError("--factory-cert and --factory-key go together");
  }
  if (Boolean(token) === Boolean(factoryCert)) {
    throw new UsageError("enroll needs --token, or --factory-cert and --factory-key (one of the two)");
  }
  const caFile = str(values, "ca");
  const est = client({
    server,
    label: str(values, "label"),
    ca: caFile ? readText(caFile, "CA file") : undefined,
    cert: factoryCert ? readText(factoryCert, "factory certificate") : undefined,
    key: factoryKey ? readText(factoryKey, "factory key") : undefined,
    token,
    deviceId,
  });
  const keys = await generateKeyPair(algorithm);
  const san = new x509.SubjectAlternativeNameExtension([{ type: "url", value: deviceUri(deviceId) }]);
  // JSON form of the subject: an id with "," or "=" needs no escaping.
  const csr = await buildCsr([{ CN: [deviceId] }], [san], keys, algorithm);
  const send = (c: EstClient, der: Uint8Array) => c.simpleEnroll(der);
  return enroll({ client: est, send, csr, keys, deviceId, dir, waitMs, done: "enrolled" }, io);
}

/** The device id a certificate names: its `urn:device:` SAN URI, else its CN. */
export function deviceIdOf(cert: x509.X509Certificate): string | undefined {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const prefix = deviceUri("");
  for (const name of san?.names.items ?? []) {
    if (name.type === "url" && name.value.startsWith(prefix)) return name.value.slice(prefix.length);
  }
  return cert.subjectName.getField("CN")[0];
}

/** `portcullis reenroll …`: a new key and certificate, authenticated by the current one (mTLS). */
export async function runReenroll(argv: string[], io: EnrollIo = processIo): Promise<number> {
  const values = parse(argv, REENROLL_OPTIONS);
  const command = "reenroll";
  const server = serverUrl(required(values, "server", command));
  const certFile = required(values, "cert", command);
  const keyFile = required(values, "key", command);
  const dir = outDir(values, command);
  const waitMs = parseWait(str(values, "wait"));
  let current: Awaited<ReturnType<typeof readIssuer>>;
  try {
    current = await readIssuer(certFile, keyFile);
  } catch (err) {
    if (err instanceof PkiError) throw new UsageError(err.message);
    throw err;
  }
  const deviceId = deviceIdOf(current.cert);
  if (deviceId === undefined) {
    throw new UsageError(`${certFile}: names no device (no ${deviceUri("ID")} subjectAltName and no CN)`);
  }
  const problem = deviceIdProblem(deviceId);
  if (problem) throw new UsageError(`${certFile}: ${problem}`);
  const algorithm = keyType(values, current.algorithm);
  const caFile = str(values, "ca");
  const est = client({
    server,
    label: str(values, "label"),
    ca: caFile ? readText(caFile, "CA file") : undefined,
    cert: readText(certFile, "certificate"),
    key: readText(keyFile, "key"),
  });
  const keys = await generateKeyPair(algorithm);
  // RFC 7030 §4.2.2: the subject and subjectAltName of the current certificate, byte for byte.
  const san = current.cert.extensions.find((ext) => ext.type === SAN_OID);
  const extensions = san ? [new x509.Extension(san.type, san.critical, san.value)] : [];
  const csr = await buildCsr(current.cert.subjectName, extensions, keys, algorithm);
  const send = (c: EstClient, der: Uint8Array) => c.simpleReenroll(der);
  return enroll({ client: est, send, csr, keys, deviceId, dir, waitMs, done: "renewed" }, io);
}
