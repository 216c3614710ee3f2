// Test helper: mints certificates byte by byte (DER from der-encode.ts, signed with node:crypto), for what
// WebCrypto and @peculiar/x509 will not produce: v1 certificates, SHA-1/MD5 signatures, RSA 1024,
// secp256k1 and Ed448 keys, extensions in a v1 certificate.
import { createHash, createPublicKey, generateKeyPairSync, KeyObject, sign } from "node:crypto";
import { type Certificate, parseCertificate, toPem } from "../certificate.ts";
import { children, readTlv } from "../der.ts";
import { x509 } from "../x509.ts";
import { bits, int, nul, octets, oid, seq, tagged, time, tlv } from "./der-encode.ts";
import type { Minted } from "./mint.ts";

export type RawSignature =
  | "sha256WithRSA"
  | "sha1WithRSA"
  | "md5WithRSA"
  | "ecdsaSha256"
  | "ecdsaSha384"
  | "ecdsaSha1"
  | "ed25519"
  | "ed448";

const SIGNATURES: Record<RawSignature, { oid: string; hash: string | null; params: boolean }> = {
  sha256WithRSA: { oid: "1.2.840.113549.1.1.11", hash: "sha256", params: true },
  sha1WithRSA: { oid: "1.2.840.113549.1.1.5", hash: "sha1", params: true },
  md5WithRSA: { oid: "1.2.840.113549.1.1.4", hash: "md5", params: true },
  ecdsaSha256: { oid: "1.2.840.10045.4.3.2", hash: "sha256", params: false },
  ecdsaSha384: { oid: "1.2.840.10045.4.3.3", hash: "sha384", params: false },
  ecdsaSha1: { oid: "1.2.840.10045.4.1", hash: "sha1", params: false },
  ed25519: { oid: "1.3.101.112", hash: null, params: false },
  ed448: { oid: "1.3.101.113", hash: null, params: false },
};

export interface KeyPair {
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

/** Who signs: the issuer's subject Name DER and private key. */
export interface RawSigner {
  readonly nameDer: Uint8Array;
  readonly privateKey: KeyObject;
}

export type KeySpec =
  | { readonly type: "ec"; readonly curve: string }
  | { readonly type: "rsa"; readonly bits: number }
  | { readonly type: "ed25519" | "ed448" };

export function rawKeys(spec: KeySpec = { type: "ec", curve: "prime256v1" }): KeyPair {
  if (spec.type === "ec") return generateKeyPairSync("ec", { namedCurve: spec.curve });
  if (spec.type === "rsa") return generateKeyPairSync("rsa", { modulusLength: spec.bits });
  return spec.type === "ed25519" ? generateKeyPairSync("ed25519") : generateKeyPairSync("ed448");
}

/** A certificate minted by mint.ts as a signer for raw certificates. */
export const signerOf = (m: Minted): RawSigner => ({
  nameDer: m.cert.subjectDer,
  privateKey: KeyObject.from(m.keys.privateKey),
});

export interface RawMintOptions {
  /** e.g. "O=Acme, CN=device-001" (first RDN first in the encoding). */
  readonly subject: string;
  /** Omitted: self-signed with `keys`. */
  readonly issuer?: RawSigner;
  readonly keys?: KeyPair;
  /** Default 3. */
  readonly version?: 1 | 2 | 3;
  /** Default: ecdsaSha256 for EC signers, sha256WithRSA for RSA, ed25519 for Ed25519. */
  readonly signature?: RawSignature;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Extensions (e.g. from @peculiar/x509 classes); none by default. */
  readonly extensions?: readonly x509.Extension[];
  readonly serial?: number;
  /** The serialNumber INTEGER's content octets exactly as given (negative, zero, over-long serials). */
  readonly serialBytes?: Uint8Array;
  /** A different algorithm identifier in the outer (unsigned) signatureAlgorithm field. */
  readonly outerSignature?: RawSignature;
  /** The SubjectPublicKeyInfo DER to certify instead of `keys.publicKey` (e.g. a key built to be costly). */
  readonly spki?: Uint8Array;
  /**
   * v3 certificates get a subjectKeyIdentifier, and an authorityKeyIdentifier naming the signer's key
   * unless self-signed, as CAs issue them; false leaves both out.
   */
  readonly keyIds?: boolean;
}

export interface RawMinted {
  readonly cert: Certificate;
  readonly pem: string;
  readonly keys: KeyPair;
  readonly signer: RawSigner;
}

let nextSerial = 0x5000;

function defaultSignature(key: KeyObject): RawSignature {
  const type = key.asymmetricKeyType;
  if (type === "rsa") return "sha256WithRSA";
  if (type === "ed25519") return "ed25519";
  if (type === "ed448") return "ed448";
  return "ecdsaSha256";
}

/** DER of a certificate built from `options`. */
export function rawCertificateDer(options: RawMintOptions, keys: KeyPair): Buffer {
  const subjectDer = Buffer.from(new x509.Name(options.subject).toArrayBuffer());
  const signer = options.issuer ?? { nameDer: subjectDer, privateKey: keys.privateKey };
  const alg = SIGNATURES[options.signature ?? defaultSignature(signer.privateKey)];
  const algorithm = alg.params ? seq(oid(alg.oid), nul()) : seq(oid(alg.oid));
  const version = options.version ?? 3;
  const extensions: Uint8Array[] = (options.extensions ?? []).map((e) => new Uint8Array(e.rawData));
  if (version === 3 && options.keyIds !== false) {
    extensions.unshift(
      keyIdExtension("2.5.29.14", octets(keyIdOfSpki(options.spki ?? spkiOf(keys.publicKey)))),
    );
    if (options.issuer) {
      const signerKey = keyIdOfSpki(spkiOf(createPublicKey(options.issuer.privateKey)));
      extensions.unshift(keyIdExtension("2.5.29.35", seq(tagged(0, false, signerKey))));
    }
  }
  const tbs = seq(
    ...(version > 1 ? [tagged(0, true, int(version - 1))] : []),
    options.serialBytes ? tlv(0x02, options.serialBytes) : int(options.serial ?? nextSerial++),
    algorithm,
    signer.nameDer,
    seq(time(options.notBefore), time(options.notAfter)),
    subjectDer,
    options.spki ?? spkiOf(keys.publicKey),
    ...(extensions.length > 0 ? [tagged(3, true, seq(...extensions))] : []),
  );
  const signature = sign(alg.hash, tbs, signer.privateKey);
  const outer = options.outerSignature ? SIGNATURES[options.outerSignature] : alg;
  return seq(tbs, outer.params ? seq(oid(outer.oid), nul()) : seq(oid(outer.oid)), bits(signature));
}

const spkiOf = (key: KeyObject): Buffer => key.export({ type: "spki", format: "der" });

/** The key identifier CAs compute (RFC 5280 §4.2.1.2 method 1): SHA-1 of the subjectPublicKey bits. */
export function keyIdOfSpki(spki: Uint8Array): Buffer {
  const [, key] = children(spki, readTlv(spki, 0));
  if (!key) throw new Error("bad SPKI");
  return createHash("sha1")
    .update(spki.subarray(key.start + 1, key.end))
    .digest();
}

/**
 * An RSA SubjectPublicKeyInfo with any modulus and exponent (big-endian bytes): node:crypto only makes
 * keys with small exponents, and the key policy must be tested on the ones built to be costly.
 */
export function rsaSpki(modulus: Uint8Array, exponent: Uint8Array): Buffer {
  return seq(seq(oid("1.2.840.113549.1.1.1"), nul()), bits(seq(int(modulus), int(exponent))));
}

const keyIdExtension = (id: string, value: Buffer): Buffer => seq(oid(id), octets(value));

export function mintRaw(options: RawMintOptions): RawMinted {
  const keys = options.keys ?? rawKeys();
  const cert = parseCertificate(rawCertificateDer(options, keys));
  return { cert, pem: toPem(cert), keys, signer: { nameDer: cert.subjectDer, privateKey: keys.privateKey } };
}

/** The extensions of a device certificate: digitalSignature, clientAuth, SAN URI urn:device:<cn>. */
export function deviceExtensions(cn: string): x509.Extension[] {
  return [
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(["1.3.6.1.5.5.7.3.2"], false),
    new x509.SubjectAlternativeNameExtension([{ type: "url", value: `urn:device:${cn}` }], false),
  ];
}

/** The extensions of a CA: critical basicConstraints, keyCertSign + cRLSign. */
export function caExtensions(): x509.Extension[] {
  return [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
  ];
}
