// Names a certificate's signature algorithm and public key from their DER (AlgorithmIdentifier and
// SubjectPublicKeyInfo), so that algorithm-policy.ts can judge them without touching a crypto library.
import { children, contents, ctx, DerError, decodeOid, readTlv, TAG, type Tlv } from "./der.ts";

export interface SignatureAlgorithm {
  readonly oid: string;
  /** e.g. "sha256WithRSAEncryption", "ecdsa-with-SHA256", "rsassa-pss", or the OID when unknown. */
  readonly name: string;
  /** Digest used: "md5", "sha1", "sha256"... undefined for unknown algorithms; "none" for EdDSA. */
  readonly hash: string | undefined;
}

export interface PublicKeyInfo {
  /** "rsa", "ec", "ed25519", "ed448", "dsa", or the algorithm OID when unknown. */
  readonly type: string;
  /** RSA modulus size. */
  readonly bits?: number;
  /** RSA public exponent: judged by the key policy before the key is ever used. */
  readonly exponent?: bigint;
  /** EC named curve: "P-256", "P-384", "P-521", "secp256k1"... or its OID. */
  readonly curve?: string;
}

const SIGNATURES: Readonly<Record<string, readonly [string, string]>> = {
  "1.2.840.113549.1.1.2": ["md2WithRSAEncryption", "md2"],
  "1.2.840.113549.1.1.3": ["md4WithRSAEncryption", "md4"],
  "1.2.840.113549.1.1.4": ["md5WithRSAEncryption", "md5"],
  "1.2.840.113549.1.1.5": ["sha1WithRSAEncryption", "sha1"],
  "1.3.14.3.2.29": ["sha1WithRSASignature", "sha1"],
  "1.2.840.113549.1.1.14": ["sha224WithRSAEncryption", "sha224"],
  "1.2.840.113549.1.1.11": ["sha256WithRSAEncryption", "sha256"],
  "1.2.840.113549.1.1.12": ["sha384WithRSAEncryption", "sha384"],
  "1.2.840.113549.1.1.13": ["sha512WithRSAEncryption", "sha512"],
  "1.2.840.10045.4.1": ["ecdsa-with-SHA1", "sha1"],
  "1.2.840.10045.4.3.1": ["ecdsa-with-SHA224", "sha224"],
  "1.2.840.10045.4.3.2": ["ecdsa-with-SHA256", "sha256"],
  "1.2.840.10045.4.3.3": ["ecdsa-with-SHA384", "sha384"],
  "1.2.840.10045.4.3.4": ["ecdsa-with-SHA512", "sha512"],
  "1.2.840.10040.4.3": ["dsa-with-sha1", "sha1"],
  "2.16.840.1.101.3.4.3.2": ["dsa-with-sha256", "sha256"],
  "1.3.101.112": ["Ed25519", "none"],
  "1.3.101.113": ["Ed448", "none"],
};

const RSASSA_PSS = "1.2.840.113549.1.1.10";

const DIGESTS: Readonly<Record<string, string>> = {
  "1.3.14.3.2.26": "sha1",
  "2.16.840.1.101.3.4.2.4": "sha224",
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
  "1.2.840.113549.2.5": "md5",
};

const CURVES: Readonly<Record<string, string>> = {
  "1.2.840.10045.3.1.7": "P-256",
  "1.3.132.0.34": "P-384",
  "1.3.132.0.35": "P-521",
  "1.3.132.0.10": "secp256k1",
  "1.2.840.10045.3.1.1": "P-192",
  "1.3.132.0.33": "P-224",
  "1.3.36.3.3.2.8.1.1.7": "brainpoolP256r1",
  "1.3.36.3.3.2.8.1.1.11": "brainpoolP384r1",
  "1.3.36.3.3.2.8.1.1.13": "brainpoolP512r1",
};

const KEY_TYPES: Readonly<Record<string, string>> = {
  "1.2.840.113549.1.1.1": "rsa",
  [RSASSA_PSS]: "rsa",
  "1.2.840.10045.2.1": "ec",
  "1.3.101.112": "ed25519",
  "1.3.101.113": "ed448",
  "1.2.840.10040.4.1": "dsa",
};

/** AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL } */
function algorithmIdentifier(buf: Uint8Array, tlv: Tlv): { oid: string; params: Tlv | undefined } {
  if (tlv.tag !== TAG.sequence) throw new DerError("AlgorithmIdentifier is not a SEQUENCE");
  const [oid, params, extra] = children(buf, tlv);
  if (!oid || extra) throw new DerError("bad AlgorithmIdentifier");
  return { oid: decodeOid(buf, oid), params };
}

/** The hash of RSASSA-PSS-params (RFC 4055): hashAlgorithm [0] defaults to SHA-1. */
function pssHash(buf: Uint8Array, params: Tlv | undefined): string | undefined {
  if (params === undefined || params.tag !== TAG.sequence) return params === undefined ? "sha1" : undefined;
  for (const field of children(buf, params)) {
    if (field.tag !== ctx(0, true)) continue;
    const { oid } = algorithmIdentifier(buf, readTlv(buf, field.start, field.end));
    return DIGESTS[oid];
  }
  return "sha1";
}

export function signatureAlgorithmOf(buf: Uint8Array, tlv: Tlv): SignatureAlgorithm {
  const { oid, params } = algorithmIdentifier(buf, tlv);
  if (oid === RSASSA_PSS) return { oid, name: "rsassa-pss", hash: pssHash(buf, params) };
  const known = SIGNATURES[oid];
  return { oid, name: known?.[0] ?? oid, hash: known?.[1] };
}

/** The bit length of an unsigned big-endian INTEGER's contents. */
function bitLength(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  if (i === bytes.length) return 0;
  return (bytes.length - i - 1) * 8 + (32 - Math.clz32(bytes[i] ?? 0));
}

/** An INTEGER's contents read as unsigned (a negative exponent is caught by the key policy as "not allowed"). */
function unsignedBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString("hex")}`);
}

/** SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING } */
export function publicKeyInfoOf(buf: Uint8Array, spki: Tlv): PublicKeyInfo {
  const [alg, key] = spki.tag === TAG.sequence ? children(buf, spki) : [];
  if (!alg || !key || key.tag !== TAG.bitString) throw new DerError("bad SubjectPublicKeyInfo");
  const { oid, params } = algorithmIdentifier(buf, alg);
  const type = KEY_TYPES[oid] ?? oid;
  if (type === "ec") {
    const curveOid = params?.tag === TAG.oid ? decodeOid(buf, params) : "explicit parameters";
    return { type, curve: CURVES[curveOid] ?? curveOid };
  }
  if (type === "rsa") {
    // BIT STRING (0 unused bits) wrapping RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
    const bits = contents(buf, key);
    const rsa = readTlv(bits, 1);
    const [modulus, exponent, extra] = rsa.tag === TAG.sequence ? children(bits, rsa) : [];
    if (modulus?.tag !== TAG.integer || exponent?.tag !== TAG.integer || extra) {
      throw new DerError("bad RSAPublicKey");
    }
    const e = contents(bits, exponent);
    return { type, bits: bitLength(contents(bits, modulus)), exponent: unsignedBigInt(e) };
  }
  return { type };
}

/** "ECDSA P-256", "RSA 2048", "Ed25519"...: how details and `portcullis verify` name a key. */
export function describeKey(key: PublicKeyInfo): string {
  if (key.type === "ec") return `ECDSA ${key.curve}`;
  if (key.type === "rsa") return `RSA ${key.bits}`;
  if (key.type === "ed25519") return "Ed25519";
  if (key.type === "ed448") return "Ed448";
  return key.type.toUpperCase();
}
