// Hostile client chains, attacker loops and device latency sampling for issue 7's test and bench.
// Certificates are minted in-process (huge-exponent RSA candidate issuers, same-named CAs with garbage
// signatures, a leaf whose key the attacker holds); attacker loops run in a worker thread; a registered
// device's latency is sampled on keep-alive and fresh connections.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  X509Certificate,
} from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { Client } from "undici";
import type { ConfigInput } from "../../src/config/schema.ts";
import { DEFAULT_CHAIN_LIMITS } from "../../src/identity/limits.ts";
import { bits, int, nul, octets, oid, seq, tagged, time } from "../../src/identity/testing/der-encode.ts";
import { x509 } from "../../src/identity/x509.ts";
import { HOST, registryConfig } from "./registry.ts";
import { tlsHttp } from "./tls-http.ts";

// ---------------------------------------------------------------------------------------------------------
// Minting
// ---------------------------------------------------------------------------------------------------------

/** The issuer the hostile chain pretends to come from: a real CA's subject Name DER and key identifier. */
export interface ClaimedIssuer {
  readonly nameDer: Buffer;
  /** The CA's subjectKeyIdentifier: the leaf's AKI and every hostile CA's SKI, so key ids prune nothing. */
  readonly keyId: Buffer;
}

/** One minted certificate. */
export interface HostileCert {
  readonly der: Buffer;
  readonly pem: string;
}

const OID_RSA = "1.2.840.113549.1.1.1";
const OID_SHA256_RSA = "1.2.840.113549.1.1.11";
const OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2";
const OID_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const DAY = 86_400_000;
/**
 * OpenSSL refuses public exponents over 64 bits only with moduli over 3072 bits (OPENSSL_RSA_SMALL_MODULUS_BITS):
 * 3072 is the largest modulus whose huge exponent it still exponentiates with.
 */
export const MODULUS_BITS = 3072;
export const EXPONENT_BITS = 3000;

const TRUE = Buffer.from([0x01, 0x01, 0xff]);
/** The public half of a key object (createPublicKey refuses one that is public already). */
const publicOf = (key: KeyObject): KeyObject => (key.type === "public" ? key : createPublicKey(key));
const extension = (id: string, critical: boolean, value: Buffer): Buffer =>
  critical ? seq(oid(id), TRUE, octets(value)) : seq(oid(id), octets(value));
/** KeyUsage BIT STRING: `first` is the first content byte, `unused` the unused bits of it. */
const keyUsage = (first: number, unused: number): Buffer =>
  extension("2.5.29.15", true, Buffer.from([0x03, 0x02, unused, first]));
const caExtensions = (keyId: Buffer): Buffer[] => [
  extension("2.5.29.19", true, seq(TRUE)), // basicConstraints cA TRUE, critical
  keyUsage(0x06, 1), // keyCertSign | cRLSign
  extension("2.5.29.14", false, octets(keyId)), // subjectKeyIdentifier
  extension("2.5.29.35", false, seq(tagged(0, false, keyId))), // authorityKeyIdentifier keyIdentifier
];

/** A positive serial of 16 octets (RFC 5280: positive, at most 20 octets). */
function serial(): Buffer {
  const s = randomBytes(16);
  s[0] = ((s[0] ?? 0) & 0x7f) | 0x01;
  return int(s);
}

function algorithm(sigOid: string): Buffer {
  // RSA PKCS#1 v1.5 identifiers carry NULL parameters, ECDSA ones none (RFC 4055, RFC 5758).
  return sigOid === OID_SHA256_RSA ? seq(oid(sigOid), nul()) : seq(oid(sigOid));
}

function pemOf(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der
    .toString("base64")
    .replace(/.{1,64}/g, "$&\n")}-----END CERTIFICATE-----\n`;
}

interface TbsFields {
  readonly sigOid: string;
  readonly issuer: Buffer;
  readonly subject: Buffer;
  readonly spki: Buffer;
  readonly extensions: readonly Buffer[];
}

function tbsCertificate(f: TbsFields): Buffer {
  const now = Date.now();
  return seq(
    tagged(0, true, int(2)),
    serial(),
    algorithm(f.sigOid),
    f.issuer,
    seq(time(new Date(now - DAY)), time(new Date(now + 30 * DAY))),
    f.subject,
    f.spki,
    tagged(3, true, seq(...f.extensions)),
  );
}

/**
 * Random bytes as a signature: `length` 384 for RSA 3072 (a verifier checks the length before the
 * exponentiation, so a short one would cost nothing), ~72 for ECDSA. The first byte keeps it below any
 * 3072-bit modulus.
 */
function garbageSignature(length: number): Buffer {
  const sig = randomBytes(length);
  sig[0] = 0x01;
  return sig;
}

function certificate(tbs: Buffer, sigOid: string, signature: Buffer): HostileCert {
  const der = seq(tbs, algorithm(sigOid), bits(signature));
  return { der, pem: pemOf(der) };
}

let modulus: Buffer | undefined;

/** One real 3072-bit RSA modulus per process: key generation is the slow part, exponents are free. */
export function sharedModulus(): Buffer {
  if (modulus) return modulus;
  const { publicKey } = generateKeyPairSync("rsa", { modulusLength: MODULUS_BITS });
  const n = publicKey.export({ format: "jwk" }).n;
  if (n === undefined) throw new Error("RSA key without a modulus");
  modulus = Buffer.from(n, "base64url");
  return modulus;
}

/** A random odd public exponent of exactly `bitLength` bits. */
export function hugeExponent(bitLength = EXPONENT_BITS): Buffer {
  const e = randomBytes(Math.ceil(bitLength / 8));
  const top = bitLength % 8 === 0 ? 8 : bitLength % 8;
  e[0] = ((e[0] ?? 0) & ((1 << top) - 1)) | (1 << (top - 1));
  e[e.length - 1] = (e[e.length - 1] ?? 0) | 1;
  return e;
}

/** SubjectPublicKeyInfo { rsaEncryption NULL, BIT STRING RSAPublicKey { n, e } }, built by hand. */
export function rsaSpki(n: Buffer, e: Buffer): Buffer {
  return seq(seq(oid(OID_RSA), nul()), bits(seq(int(n), int(e))));
}

/** The Name DER and subjectKeyIdentifier of a real CA certificate (PEM, the first block). */
export function claimedIssuerOf(caPem: string): ClaimedIssuer {
  const cert = new x509.X509Certificate(caPem);
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (!ski) throw new Error(`${cert.subject} has no subjectKeyIdentifier`);
  return { nameDer: Buffer.from(cert.subjectName.toArrayBuffer()), keyId: Buffer.from(ski.keyId, "hex") };
}

/**
 * `n` self-issued CA certificates named like the leaf's issuer, each with a real 3072-bit modulus and a
 * random ~3000-bit public exponent: every one is a candidate issuer whose signature check costs milliseconds.
 * Self-issued with SKI = AKI = the claimed key id, so that Node's peer-chain walk (getPeerCertificate(true))
 * links every one of them, and key-identifier matching cannot tell them from the real CA. Their own
 * signatures are garbage of full length (sha256WithRSA, so that OpenSSL's issuer check, which wants the
 * child's signature algorithm to match the issuer's key type, links them).
 */
export function hugeExponentIssuers(
  n: number,
  issuer: ClaimedIssuer,
  exponentBits = EXPONENT_BITS,
): HostileCert[] {
  const mod = sharedModulus();
  return Array.from({ length: n }, () =>
    certificate(
      tbsCertificate({
        sigOid: OID_SHA256_RSA,
        issuer: issuer.nameDer,
        subject: issuer.nameDer,
        spki: rsaSpki(mod, hugeExponent(exponentBits)),
        extensions: caExtensions(issuer.keyId),
      }),
      OID_SHA256_RSA,
      garbageSignature(mod.length),
    ),
  );
}

/**
 * `n` CA certificates with huge-exponent RSA keys chained by name (the first named like the leaf's issuer,
 * each issued by the next, the last by a name nobody holds): unlike same-named candidates, OpenSSL verifies
 * every link of such a chain during the handshake, one huge-exponent exponentiation each, before the engine
 * sees it. The cost the gateway cannot bound (Node.js has no verify depth): for the bench, not the test.
 */
export function hugeExponentChain(n: number, issuer: ClaimedIssuer): HostileCert[] {
  const mod = sharedModulus();
  const name = (i: number) => (i === 0 ? issuer.nameDer : nameDer(`CN=Hostile Chain CA ${i}`));
  return Array.from({ length: n }, (_, i) =>
    certificate(
      tbsCertificate({
        sigOid: OID_SHA256_RSA,
        issuer: name(i + 1),
        subject: name(i),
        spki: rsaSpki(mod, hugeExponent()),
        extensions: caExtensions(i === 0 ? issuer.keyId : randomBytes(20)).slice(0, 3),
      }),
      OID_SHA256_RSA,
      garbageSignature(mod.length),
    ),
  );
}

/** `n` self-issued P-256 CA certificates (a key the policy allows) named like the leaf's issuer, garbage-signed. */
export function sameNameIssuers(n: number, issuer: ClaimedIssuer): HostileCert[] {
  return Array.from({ length: n }, () => {
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    return certificate(
      tbsCertificate({
        sigOid: OID_ECDSA_SHA256,
        issuer: issuer.nameDer,
        subject: issuer.nameDer,
        spki: publicKey.export({ type: "spki", format: "der" }),
        extensions: caExtensions(issuer.keyId),
      }),
      OID_ECDSA_SHA256,
      // ECDSA-Sig-Value SEQUENCE { r, s } of random integers: well-formed, never valid.
      seq(int(garbageSignature(32)), int(garbageSignature(32))),
    );
  });
}

/**
 * How the attacker's leaf is "signed": `rsa-garbage` claims sha256WithRSA with 384 random bytes (so that
 * each huge-exponent candidate pays a full RSA exponentiation to reject it); `ecdsa-own-key` is a real
 * ECDSA signature by the attacker's own key (not the CA's), for the P-256 candidates.
 */
export type LeafSignature = "rsa-garbage" | "ecdsa-own-key";

const ATTACKER_NAME = Buffer.from(new x509.Name("CN=attacker").toArrayBuffer());

/**
 * A device-like leaf `CN=attacker` under the claimed issuer's name, AKI = its key id, holding the P-256
 * key the client has (so the TLS handshake completes: CertificateVerify is made with it). A fresh serial
 * every call: no verdict cache, signature memo or parse cache on the gateway has seen it before.
 */
export function attackerLeaf(issuer: ClaimedIssuer, key: KeyObject, signature: LeafSignature): HostileCert {
  const sigOid = signature === "rsa-garbage" ? OID_SHA256_RSA : OID_ECDSA_SHA256;
  const spki = publicOf(key).export({ type: "spki", format: "der" });
  const tbs = tbsCertificate({
    sigOid,
    issuer: issuer.nameDer,
    subject: ATTACKER_NAME,
    spki: Buffer.from(spki),
    extensions: [
      keyUsage(0x80, 7), // digitalSignature
      extension("2.5.29.37", false, seq(oid(OID_CLIENT_AUTH))),
      extension("2.5.29.17", false, seq(tagged(6, false, Buffer.from("urn:device:attacker", "latin1")))),
      extension("2.5.29.35", false, seq(tagged(0, false, issuer.keyId))),
    ],
  });
  const sig = signature === "rsa-garbage" ? garbageSignature(MODULUS_BITS / 8) : sign("sha256", tbs, key);
  return certificate(tbs, sigOid, sig);
}

// Properly signed certificates (ECDSA P-256, SKI/AKI as a strict RFC 5280 profile wants them), for chains
// whose links verify: the benchmark's normal chain and its worst-case chain under the default limits.

/** A Name DER from its string form, e.g. "O=Bench, CN=Bench Root CA". */
export const nameDer = (name: string): Buffer => Buffer.from(new x509.Name(name).toArrayBuffer());

/** A key identifier for `publicKey`: the first 20 bytes of SHA-256 over its SPKI (RFC 7093 method 1). */
export function keyIdOf(publicKey: KeyObject): Buffer {
  const spki = publicOf(publicKey).export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest().subarray(0, 20);
}

export interface SignedSpec {
  readonly subject: Buffer;
  readonly issuer: Buffer;
  /** The certificate's own key (public or private). */
  readonly key: KeyObject;
  /** The issuer's private key (P-256). */
  readonly signingKey: KeyObject;
  readonly extensions: readonly Buffer[];
}

/** A certificate signed with ecdsa-with-SHA256 by `signingKey`. */
export function mintSigned(spec: SignedSpec): HostileCert {
  const tbs = tbsCertificate({
    sigOid: OID_ECDSA_SHA256,
    issuer: spec.issuer,
    subject: spec.subject,
    spki: Buffer.from(publicOf(spec.key).export({ type: "spki", format: "der" })),
    extensions: spec.extensions,
  });
  return certificate(tbs, OID_ECDSA_SHA256, sign("sha256", tbs, spec.signingKey));
}

/** A CA's extensions: critical basicConstraints and keyUsage, SKI, AKI (absent for a self-signed root), extras. */
export function signedCaExtensions(ski: Buffer, aki: Buffer | undefined, ...extra: Buffer[]): Buffer[] {
  return [
    extension("2.5.29.19", true, seq(TRUE)),
    keyUsage(0x06, 1),
    extension("2.5.29.14", false, octets(ski)),
    ...(aki ? [extension("2.5.29.35", false, seq(tagged(0, false, aki)))] : []),
    ...extra,
  ];
}

/** A device's extensions: digitalSignature, clientAuth, AKI, SAN URI urn:device:<id> plus `dnsNames`. */
export function deviceExtensions(aki: Buffer, deviceId: string, dnsNames: readonly string[] = []): Buffer[] {
  const sans = [
    tagged(6, false, Buffer.from(`urn:device:${deviceId}`, "latin1")),
    ...dnsNames.map((d) => tagged(2, false, Buffer.from(d, "latin1"))),
  ];
  return [
    keyUsage(0x80, 7),
    extension("2.5.29.37", false, seq(oid(OID_CLIENT_AUTH))),
    extension("2.5.29.17", false, seq(...sans)),
    extension("2.5.29.35", false, seq(tagged(0, false, aki))),
  ];
}

/** A critical nameConstraints extension permitting these DNS subtrees. */
export function permittedDns(subtrees: readonly string[]): Buffer {
  const list = subtrees.map((d) => seq(tagged(2, false, Buffer.from(d, "latin1"))));
  return extension("2.5.29.30", true, seq(tagged(0, true, ...list)));
}

export const newP256 = (): { publicKey: KeyObject; privateKey: KeyObject } =>
  generateKeyPairSync("ec", { namedCurve: "prime256v1" });

/** One way of attacking: what the client presents after its leaf, and how the leaf is signed. */
export interface HostileVariant {
  readonly name: string;
  /** Certificates presented, the leaf included. */
  readonly count: number;
  /** Total DER bytes presented, the leaf included (approximately: leaves differ by a few bytes). */
  readonly bytes: number;
  readonly leafSignature: LeafSignature;
  /** The presented CAs, PEM, in the order sent. */
  readonly chainPem: string;
  /** Whether it is over the default chainLimits (10 certificates, 32 KiB): it must get chain_too_complex. */
  readonly overLimits: boolean;
}

/** What attacker loops need, as structured-clone-safe data (it crosses into a worker thread). */
export interface HostileKit {
  readonly issuer: ClaimedIssuer;
  /** The attacker's P-256 private key, PKCS#8 PEM. */
  readonly keyPem: string;
  readonly variants: readonly HostileVariant[];
}

/** The hostile variants are sized against the default chainLimits. */
export const DEFAULT_LIMITS = DEFAULT_CHAIN_LIMITS;

/**
 * The hostile variants: 60 huge-exponent candidates (the reported attack), 60 same-named P-256 CAs, and
 * both kinds with 8 CAs (9 certificates in all, under every default limit: there the key policy or the
 * signature budget must stop them, not the count).
 */
export function hostileKit(issuer: ClaimedIssuer): HostileKit {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const keyPem = String(privateKey.export({ type: "pkcs8", format: "pem" }));
  const leafBytes = attackerLeaf(issuer, privateKey, "rsa-garbage").der.length;
  const variant = (name: string, leafSignature: LeafSignature, cas: HostileCert[]): HostileVariant => {
    const count = cas.length + 1;
    const bytes = leafBytes + cas.reduce((sum, c) => sum + c.der.length, 0);
    return {
      name,
      count,
      bytes,
      leafSignature,
      chainPem: cas.map((c) => c.pem).join(""),
      overLimits: count > DEFAULT_LIMITS.maxCertificates || bytes > DEFAULT_LIMITS.maxBytes,
    };
  };
  return {
    issuer,
    keyPem,
    variants: [
      variant("huge-exponent-60", "rsa-garbage", hugeExponentIssuers(60, issuer)),
      variant("same-name-60", "ecdsa-own-key", sameNameIssuers(60, issuer)),
      variant("huge-exponent-9", "rsa-garbage", hugeExponentIssuers(8, issuer)),
      variant("same-name-9", "ecdsa-own-key", sameNameIssuers(8, issuer)),
    ],
  };
}

/**
 * The same attacker with an ordinary bad chain (its leaf alone, untrusted): a reference load that costs the
 * gateway what any refused client costs (a full handshake, one signature check), nothing hostile.
 */
export function controlKit(kit: HostileKit): HostileKit {
  return {
    ...kit,
    variants: [
      {
        name: "leaf-only",
        count: 1,
        bytes: 0,
        leafSignature: "ecdsa-own-key",
        chainPem: "",
        overLimits: false,
      },
    ],
  };
}

/** Leaf PEM (fresh) + the variant's CAs: the `cert` option of a TLS client. */
export function presentedPem(kit: HostileKit, variant: HostileVariant, key: KeyObject): string {
  return attackerLeaf(kit.issuer, key, variant.leafSignature).pem + variant.chainPem;
}

/** Every PEM block of a text through node:crypto (OpenSSL), which must accept each one. */
export function parseAllWithNode(pemText: string): X509Certificate[] {
  const blocks = pemText.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/g) ?? [];
  return blocks.map((block) => new X509Certificate(block));
}

// ---------------------------------------------------------------------------------------------------------
// A gateway to attack
// ---------------------------------------------------------------------------------------------------------

/**
 * Two listeners over the demo PKI (run `ensureDemoPki` in the directory first): `app` in application
 * mode, `hs` in handshake mode without CA names (so OpenSSL lets any chain through and the identity
 * engine alone judges it, as in the report); `/echo` needs a registered device.
 */
export function hostileGatewayConfig(upstream: string): ConfigInput {
  const config = registryConfig({ upstream, storeUrl: "sqlite:data/registry.db" });
  const server = { cert: "server.crt", key: "server.key" };
  return {
    ...config,
    listeners: [
      { name: "app", port: 0, clientAuth: "application", certificates: [server], trustStores: ["devices"] },
      {
        name: "hs",
        port: 0,
        clientAuth: "handshake",
        sendCaNames: false,
        certificates: [server],
        trustStores: ["devices"],
      },
    ],
  };
}

/** The demo intermediate (the demo device's issuer) as the issuer hostile chains claim. */
export function demoIssuer(dir: string): ClaimedIssuer {
  const bundle = readFileSync(join(dir, "ca-chain.crt"), "utf8");
  const device = new x509.X509Certificate(readFileSync(join(dir, "device.crt"), "utf8"));
  for (const block of bundle.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []) {
    const ca = new x509.X509Certificate(block);
    if (ca.subject === device.issuer) return claimedIssuerOf(block);
  }
  throw new Error(`no issuer of the demo device in ${dir}/ca-chain.crt`);
}

// ---------------------------------------------------------------------------------------------------------
// Attacker loops (in a worker thread, so that the attacker's own TLS work never delays the device's
// measurements in the main thread)
// ---------------------------------------------------------------------------------------------------------

/** What one hostile connection got. */
export interface HostileOutcome {
  readonly variant: string;
  /** From connect to close, as the attacker saw it. */
  readonly ms: number;
  readonly secureConnected: boolean;
  /** HTTP status, undefined when the connection closed without an answer. */
  readonly status: number | undefined;
  readonly body: string | undefined;
  readonly reason: string | undefined;
  /** Bytes read after the handshake (0: not one HTTP byte, the handshake-mode contract). */
  readonly bytes: number;
  readonly error: string | undefined;
  readonly timedOut: boolean;
}

interface AttackerData {
  readonly kind: "portcullis-hostile-attacker";
  readonly port: number;
  readonly loops: number;
  readonly intervalMs: number;
  readonly kit: HostileKit;
  readonly timeoutMs: number;
}

export interface HostileLoad {
  /** Connections completed so far (reported by the worker as they end). */
  completed(): number;
  /** Stops starting connections, waits for those in flight, and returns every outcome. */
  stop(): Promise<HostileOutcome[]>;
}

/**
 * Starts `loops` attacker loops on `port` (SNI and Host `HOST`, path /echo), each opening a fresh TLS
 * connection per attempt (no session offered for resumption) with a fresh leaf, cycling through the kit's
 * variants, one attempt at most every `intervalMs` per loop (0: back to back, a handshake flood), the
 * loops' starts spread over one interval.
 * Resolves once the worker runs.
 */
export function startHostileLoad(options: {
  readonly port: number;
  readonly loops: number;
  readonly kit: HostileKit;
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
}): Promise<HostileLoad> {
  const data: AttackerData = {
    kind: "portcullis-hostile-attacker",
    port: options.port,
    loops: options.loops,
    intervalMs: options.intervalMs ?? 0,
    kit: options.kit,
    timeoutMs: options.timeoutMs ?? 20_000,
  };
  const worker = new Worker(
    `import(${JSON.stringify(import.meta.url)}).then((m) => m.attackerWorkerMain())`,
    { eval: true, workerData: data },
  );
  let completed = 0;
  let finish: ((outcomes: HostileOutcome[]) => void) | undefined;
  let fail: ((err: Error) => void) | undefined;
  const done = new Promise<HostileOutcome[]>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  // An unhandled rejection would be reported before stop() is called to collect it.
  done.catch(() => {});
  return new Promise((resolve, reject) => {
    worker.on("message", (m: { type: string; outcomes?: HostileOutcome[] }) => {
      if (m.type === "running") resolve({ completed: () => completed, stop });
      else if (m.type === "outcome") completed++;
      else if (m.type === "done") finish?.(m.outcomes ?? []);
    });
    worker.once("error", (err) => {
      reject(err);
      fail?.(err);
    });
    worker.once("exit", (code) => fail?.(new Error(`attacker worker exited with ${code}`)));
    const stop = async (): Promise<HostileOutcome[]> => {
      worker.postMessage("stop");
      const outcomes = await done;
      await worker.terminate();
      return outcomes;
    };
  });
}

/** The worker side of startHostileLoad (called by the worker's eval'd entry, never in the main thread). */
export async function attackerWorkerMain(): Promise<void> {
  const data = workerData as AttackerData;
  const port = parentPort;
  if (isMainThread || !port || data?.kind !== "portcullis-hostile-attacker") {
    throw new Error("attackerWorkerMain runs in the attacker worker only");
  }
  const key = createPrivateKey(data.kit.keyPem);
  const kit: HostileKit = { ...data.kit, issuer: toIssuer(data.kit.issuer) };
  let stopping = false;
  port.on("message", (m) => {
    if (m === "stop") stopping = true;
  });
  const outcomes: HostileOutcome[] = [];
  let next = 0;
  const loop = async (index: number) => {
    // Paced loops that all start at once would stay in step and hit the gateway in bursts of `loops`
    // handshakes: spread their starts over one interval, as independent clients would be.
    await pace(performance.now(), (index * data.intervalMs) / data.loops);
    while (!stopping) {
      const variant = kit.variants[next++ % kit.variants.length];
      if (!variant) break;
      const started = performance.now();
      const paced = pace(started, data.intervalMs);
      const r = await tlsHttp({
        port: data.port,
        servername: HOST,
        path: "/echo",
        cert: presentedPem(kit, variant, key),
        key: data.kit.keyPem,
        timeoutMs: data.timeoutMs,
      });
      let reason: string | undefined;
      try {
        reason = r.http ? (JSON.parse(r.http.body) as { reason?: string }).reason : undefined;
      } catch {
        reason = undefined;
      }
      const outcome: HostileOutcome = {
        variant: variant.name,
        ms: performance.now() - started,
        secureConnected: r.secureConnected,
        status: r.http?.status,
        body: r.http?.body,
        reason,
        bytes: r.raw.length,
        error: r.error?.message,
        timedOut: r.timedOut,
      };
      outcomes.push(outcome);
      port.postMessage({ type: "outcome" });
      await paced;
    }
  };
  const loops = Array.from({ length: data.loops }, (_, index) => loop(index));
  port.postMessage({ type: "running" });
  await Promise.all(loops);
  port.postMessage({ type: "done", outcomes });
}

/** Resolves `intervalMs` after `started`: the earliest a loop's next attempt may begin. */
function pace(started: number, intervalMs: number): Promise<void> {
  if (intervalMs <= 0) return Promise.resolve();
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, started + intervalMs - performance.now())));
}

/** Buffers become Uint8Arrays when cloned into a worker. */
function toIssuer(issuer: ClaimedIssuer): ClaimedIssuer {
  return { nameDer: Buffer.from(issuer.nameDer), keyId: Buffer.from(issuer.keyId) };
}

// ---------------------------------------------------------------------------------------------------------
// The registered device's latency
// ---------------------------------------------------------------------------------------------------------

export interface DeviceSample {
  readonly via: "keep-alive" | "fresh";
  readonly ms: number;
  readonly status: number;
}

export interface DeviceCredentials {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** The demo device's files in `dir`. */
export function demoDevice(dir: string): DeviceCredentials {
  const read = (f: string) => readFileSync(join(dir, f), "utf8");
  return { ca: read("ca-chain.crt"), cert: read("device.crt"), key: read("device.key") };
}

/**
 * For `durationMs`, GET /echo as the device on one keep-alive connection and, at the same time, on a fresh
 * TLS connection per request (a full mTLS handshake each: what a reconnecting fleet costs), each starting
 * a request at most every `intervalMs` (a device's pace, not a load test: 0 is back to back). Every
 * request's latency is recorded; a request in flight when time is up is awaited.
 */
export async function sampleDevice(options: {
  readonly port: number;
  readonly device: DeviceCredentials;
  readonly durationMs: number;
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
}): Promise<DeviceSample[]> {
  const { port, device, durationMs } = options;
  const intervalMs = options.intervalMs ?? 0;
  const timeoutMs = options.timeoutMs ?? 20_000;
  const samples: DeviceSample[] = [];
  const end = performance.now() + durationMs;
  const client = new Client(`https://127.0.0.1:${port}`, {
    connect: { servername: HOST, ca: device.ca, cert: device.cert, key: device.key },
    keepAliveTimeout: 60_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const keepAlive = async () => {
    while (performance.now() < end) {
      const started = performance.now();
      const paced = pace(started, intervalMs);
      let status = 0;
      try {
        const r = await client.request({ method: "GET", path: "/echo", headers: { host: HOST } });
        await r.body.text();
        status = r.statusCode;
      } catch {
        status = 0;
      }
      samples.push({ via: "keep-alive", ms: performance.now() - started, status });
      await paced;
    }
  };
  const fresh = async () => {
    while (performance.now() < end) {
      const started = performance.now();
      const paced = pace(started, intervalMs);
      const r = await tlsHttp({
        port,
        servername: HOST,
        path: "/echo",
        cert: device.cert,
        key: device.key,
        timeoutMs,
      });
      samples.push({ via: "fresh", ms: performance.now() - started, status: r.http?.status ?? 0 });
      await paced;
    }
  };
  try {
    await Promise.all([keepAlive(), fresh()]);
  } finally {
    await client.close();
  }
  return samples;
}

// ---------------------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------------------

export interface LatencyStats {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** Nearest-rank percentiles of latencies in ms. */
export function latencyStats(ms: readonly number[]): LatencyStats {
  const sorted = [...ms].sort((a, b) => a - b);
  const rank = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))];
  return {
    count: sorted.length,
    p50: rank(0.5) ?? Number.NaN,
    p99: rank(0.99) ?? Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
  };
}

export const showStats = (s: LatencyStats): string =>
  `n=${s.count} p50=${s.p50.toFixed(1)}ms p99=${s.p99.toFixed(1)}ms max=${s.max.toFixed(1)}ms`;

/** How many outcomes per variant and status/reason, e.g. "huge-exponent-60 401 bad_signature: 12". */
export function tally(outcomes: readonly HostileOutcome[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    const what =
      o.status === undefined
        ? `closed without an HTTP answer${o.error ? ` (${o.error})` : ""}${o.timedOut ? " (timed out)" : ""}`
        : `${o.status} ${o.reason ?? "(no reason)"}`;
    const key = `${o.variant} → ${what}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return new Map([...counts].sort(([a], [b]) => a.localeCompare(b)));
}

/** Every sample of one Prometheus metric: its labels and value. */
export function metricSamples(
  text: string,
  name: string,
): { readonly labels: Record<string, string>; readonly value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split("\n")) {
    // A sample line is `name{labels} value`, or `name value` without labels.
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const close = line.startsWith(`${name}{`) ? line.lastIndexOf("}") : name.length;
    const labels: Record<string, string> = {};
    for (const m of line.slice(name.length + 1, close).matchAll(/([A-Za-z_]\w*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[m[1] ?? ""] = m[2] ?? "";
    }
    out.push({ labels, value: Number(line.slice(close + 1).trim()) });
  }
  return out;
}
