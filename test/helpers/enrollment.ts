// Helpers for the enrollment (EST, RFC 7030) end-to-end tests: the demo PKI (whose enrollment CA issues
// device certificates) plus a factory PKI, a gateway config with enrollment profiles, and the real clients
// a user would run: openssl (keys, CSRs, PKCS#7, CRLs), curl against /.well-known/est, and the
// `portcullis enroll` / `portcullis reenroll` CLI.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ConfigInput } from "../../src/config/schema.ts";
import { initPki, issueToFiles } from "../../src/pki/store.ts";
import { type CurlResult, curl } from "./clients.ts";
import { runCli } from "./gateway-process.ts";
import { type AdminApi, HOST, type RegistryPki, registryConfig, registryPki } from "./registry.ts";

type ProfileInput = NonNullable<ConfigInput["enrollment"]>["profiles"][number];

/** Runs a program to completion; rejects (with its output) when it exits non-zero unless `allowFail`. */
export function run(
  file: string,
  args: readonly string[],
  options: { readonly input?: string | Buffer; readonly allowFail?: boolean } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { timeout: 20_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? Number((err as NodeJS.ErrnoException & { code?: unknown }).code) || 1 : 0;
        if (code !== 0 && !options.allowFail) {
          reject(new Error(`${file} ${args.join(" ")} exited ${code}:\n${stdout}\n${stderr}`));
        } else resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.on("error", () => {});
    child.stdin?.end(options.input ?? "");
  });
}

export const openssl = (args: readonly string[], input?: string | Buffer) => run("openssl", args, { input });

export type KeyKind = "ec" | "rsa" | "rsa1024" | "ed25519";

/** A new private key (PEM) at `file`, made by `openssl genpkey`. */
export async function genKey(file: string, kind: KeyKind = "ec"): Promise<string> {
  const algorithm: Record<KeyKind, string[]> = {
    ec: ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    rsa: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    rsa1024: ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"],
    ed25519: ["-algorithm", "ED25519"],
  };
  await openssl(["genpkey", ...algorithm[kind], "-out", file]);
  return file;
}

export interface CsrOptions {
  /** Subject, in openssl's `-subj` form; default `/CN=<id>`. */
  readonly subject?: string;
  /** subjectAltName entries; default `URI:urn:device:<id>`. Empty: none. */
  readonly san?: readonly string[];
  /** An existing key file; default a new key of `keyKind` at `<dir>/<name>.key`. */
  readonly keyFile?: string;
  readonly keyKind?: KeyKind;
}

export interface Csr {
  readonly keyFile: string;
  /** The CSR's DER. */
  readonly der: Buffer;
  /** The EST body: the DER in base64, as `openssl base64` writes it. */
  readonly base64: string;
}

/** `openssl req -new … -outform DER | openssl base64`: an EST request body for device `id`. */
export async function makeCsr(dir: string, name: string, id: string, options: CsrOptions = {}): Promise<Csr> {
  const keyFile = options.keyFile ?? (await genKey(join(dir, `${name}.key`), options.keyKind ?? "ec"));
  const san = options.san ?? [`URI:urn:device:${id}`];
  const derFile = join(dir, `${name}.csr.der`);
  const args = ["req", "-new", "-key", keyFile, "-subj", options.subject ?? `/CN=${id}`, "-outform", "DER"];
  if (san.length > 0) args.push("-addext", `subjectAltName=${san.join(",")}`);
  await openssl([...args, "-out", derFile]);
  const base64 = (await openssl(["base64", "-in", derFile])).stdout;
  return { keyFile, der: readFileSync(derFile), base64 };
}

/** The DER of a CSR, base64 as `openssl base64` writes it (64-character lines). */
export async function base64Of(der: Buffer): Promise<string> {
  return (await openssl(["base64"], der)).stdout;
}

/** The certificates of a base64 certs-only PKCS#7 body: `openssl base64 -d | openssl pkcs7 -print_certs`. */
export async function pkcs7Certs(base64Body: string): Promise<string> {
  const pipeline = "openssl base64 -d | openssl pkcs7 -inform DER -print_certs";
  return (await run("sh", ["-c", pipeline], { input: base64Body })).stdout;
}

/** The PEM blocks of `openssl … -print_certs` output. */
export function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}

/** `openssl x509 -noout -text` (plus serial and subject) of one PEM certificate. */
export async function x509Text(pem: string): Promise<string> {
  return (await openssl(["x509", "-noout", "-text", "-serial", "-subject", "-nameopt", "RFC2253"], pem))
    .stdout;
}

/** The serial of a PEM certificate as the admin API writes it: lower-case hex without leading zeros. */
export async function serialOf(pem: string): Promise<string> {
  const out = (await openssl(["x509", "-noout", "-serial"], pem)).stdout;
  const hex = /serial=([0-9A-Fa-f]+)/.exec(out)?.[1];
  assert.ok(hex, out);
  return hex.toLowerCase().replace(/^(00)+(?=.)/, "");
}

export interface EnrollmentPki extends RegistryPki {
  /** The factory PKI's directory (`factory/`): root + intermediate, `factory/ca-chain.crt`. */
  readonly factoryDir: string;
  /** Issues a factory certificate for `deviceId` (CN and urn:device SAN) to `<dir>/factory-<deviceId>.crt|.key`. */
  factoryCert(deviceId: string): Promise<{ certFile: string; keyFile: string }>;
}

/** The demo PKI in `dir` (its enrollment CA `enroll-ca.crt` is the profiles' CA) and a factory PKI. */
export async function enrollmentPki(dir: string): Promise<EnrollmentPki> {
  const base = await registryPki(dir);
  const factoryDir = join(dir, "factory");
  const factory = await initPki(factoryDir, { name: "Factory Root CA" });
  return {
    ...base,
    factoryDir,
    factoryCert: async (deviceId) => {
      const out = join(dir, `factory-${deviceId}`);
      const files = await issueToFiles(factory, { kind: "device", deviceId }, { out });
      return { certFile: files.certPath, keyFile: files.keyPath };
    },
  };
}

/** A profile on the demo enrollment CA (trust store "devices"), tokens and factory bootstrap, changed by `extra`. */
export function profile(name: string, extra: Partial<ProfileInput> = {}): ProfileInput {
  return {
    name,
    ca: { cert: "enroll-ca.crt", key: "enroll-ca.key", chain: ["ca.crt"] },
    trustStore: "devices",
    bootstrap: { tokens: {}, factory: { trustStores: ["factory"] } },
    ...extra,
  };
}

/**
 * registryConfig (`/echo`: trust store "devices", registry required) whose "devices" store also holds the
 * enrollment CA, a "factory" store over the factory PKI, and `enrollment.profiles`.
 */
export function enrollmentConfig(upstream: string, profiles: ProfileInput[]): ConfigInput {
  const base = registryConfig({ upstream, storeUrl: "sqlite:data/registry.db" });
  return {
    ...base,
    trustStores: [
      { name: "devices", ca: ["ca-chain.crt", "enroll-ca.crt"] },
      { name: "factory", ca: ["factory/ca-chain.crt"] },
    ],
    enrollment: { profiles },
  };
}

export interface EstRequest {
  readonly port: number;
  /** The test's temp dir: holds ca-chain.crt (the server's CA) and, relative to it, client cert files. */
  readonly dir: string;
  /** `[<label>/]<operation>`, e.g. "simpleenroll" or "manual/simpleenroll". */
  readonly op: string;
  /** The base64 body (POST); absent: GET. */
  readonly body?: string;
  /** `-u <user>:<token>` (HTTP Basic). */
  readonly basic?: string;
  /** `Authorization: Bearer <token>`. */
  readonly bearer?: string;
  /** A client certificate: the prefix of `<prefix>.crt` / `<prefix>.key`, relative to `dir`. */
  readonly device?: string;
  /** Default HTTP/1.1. */
  readonly http?: "1.1" | "2";
}

/** curl on /.well-known/est/…, as RFC 7030 clients call it (`Content-Type: application/pkcs10`). */
export function est(request: EstRequest): Promise<CurlResult> {
  const args: string[] = [];
  if (request.body !== undefined) {
    const file = join(request.dir, `body-${process.hrtime.bigint()}.b64`);
    writeFileSync(file, request.body);
    args.push("-X", "POST", "-H", "Content-Type: application/pkcs10", "--data-binary", `@${file}`);
  }
  if (request.basic !== undefined) args.push("-u", request.basic);
  if (request.bearer !== undefined) args.push("-H", `Authorization: Bearer ${request.bearer}`);
  return curl({
    port: request.port,
    dir: request.dir,
    device: request.device,
    http: request.http ?? "1.1",
    path: `/.well-known/est/${request.op}`,
    args,
  });
}

/** Asserts an EST refusal: status, `text/plain` body `<reason>: …`, and Basic challenge on 401. */
export function assertRefused(r: CurlResult, status: number, reason: string): void {
  assert.equal(r.status, status, `expected ${status} ${reason}, got ${r.status}: ${r.body}`);
  assert.match(r.headers["content-type"] ?? "", /^text\/plain/, r.body);
  assert.ok(r.body.startsWith(`${reason}: `), `expected reason ${reason}: ${r.body}`);
  if (status === 401) assert.equal(r.headers["www-authenticate"], 'Basic realm="est"');
}

/** Asserts a 200 certs-only answer and returns the issued certificate's PEM (via openssl pkcs7). */
export async function assertIssued(r: CurlResult): Promise<string> {
  assert.equal(r.status, 200, r.body);
  assert.equal(r.headers["content-type"], "application/pkcs7-mime; smime-type=certs-only");
  const [leaf, ...rest] = pemBlocks(await pkcs7Certs(r.body));
  assert.ok(leaf, r.body);
  assert.equal(rest.length, 0, "a simpleenroll answer carries the new certificate alone");
  return leaf;
}

/** Writes a PEM certificate and its key's path as `<dir>/<name>.crt|.key`, for `curl({ device: name })`. */
export function deviceFiles(dir: string, name: string, certPem: string, keyPem: string): string {
  mkdirSync(join(dir, name, ".."), { recursive: true });
  writeFileSync(join(dir, `${name}.crt`), certPem);
  writeFileSync(join(dir, `${name}.key`), keyPem, { mode: 0o600 });
  return name;
}

/**
 * Enrolls `id` with a new token (admin API) and curl + openssl, on the default profile or `profileName`:
 * its certificate and key land at `<dir>/<name>.crt|.key`; returns `name` (for curl and `echo`) and the PEM.
 */
export async function tokenEnroll(
  admin: AdminApi,
  port: number,
  dir: string,
  id: string,
  name = id,
  profileName?: string,
): Promise<{ name: string; leaf: string }> {
  const token = await admin.call<{ token: string }>("POST", "/enrollment-tokens", {
    deviceId: id,
    profile: profileName,
  });
  assert.equal(token.status, 201, token.text);
  const csr = await makeCsr(dir, name.replaceAll("/", "-"), id);
  const r = await est({
    port,
    dir,
    op: profileName ? `${profileName}/simpleenroll` : "simpleenroll",
    body: csr.base64,
    basic: `${id}:${token.json.token}`,
  });
  const leaf = await assertIssued(r);
  return { name: deviceFiles(dir, name, leaf, readFileSync(csr.keyFile, "utf8")), leaf };
}

/** GET /echo with a device's certificate (curl prefix relative to dir). */
export function echo(port: number, dir: string, device: string): Promise<CurlResult> {
  return curl({ port, dir, device, http: "1.1" });
}

/** `portcullis enroll|reenroll|tokens|certificates …` to completion. */
export function portcullis(args: readonly string[], env?: NodeJS.ProcessEnv) {
  return runCli(args, 30_000, env ? { env: { ...process.env, ...env } } : {});
}

/** The EST server URL the CLI takes (the server certificate names localhost). */
export const serverUrl = (port: number): string => `https://localhost:${port}`;

export { HOST };
