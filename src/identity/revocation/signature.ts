// Synchronous verification of the signature over a CRL's or an OCSP response's signed bytes, with node:crypto:
// the view verifies lazily inside status(), which must never wait.
import { constants, type KeyObject, verify } from "node:crypto";

interface Scheme {
  readonly hash: string | null;
  readonly kind: "rsa" | "ecdsa" | "eddsa";
}

/** Signature algorithms accepted on revocation data; MD5 and SHA-1 are refused as on certificates. */
const SCHEMES: Record<string, Scheme> = {
  "1.2.840.113549.1.1.11": { hash: "sha256", kind: "rsa" },
  "1.2.840.113549.1.1.12": { hash: "sha384", kind: "rsa" },
  "1.2.840.113549.1.1.13": { hash: "sha512", kind: "rsa" },
  "1.2.840.10045.4.3.2": { hash: "sha256", kind: "ecdsa" },
  "1.2.840.10045.4.3.3": { hash: "sha384", kind: "ecdsa" },
  "1.2.840.10045.4.3.4": { hash: "sha512", kind: "ecdsa" },
  "1.3.101.112": { hash: null, kind: "eddsa" },
  "1.3.101.113": { hash: null, kind: "eddsa" },
};

const WEAK: Record<string, string> = {
  "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
  "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
  "1.2.840.10045.4.1": "ecdsa-with-SHA1",
};

const KEY_KIND: Record<string, Scheme["kind"]> = {
  rsa: "rsa",
  ec: "ecdsa",
  ed25519: "eddsa",
  ed448: "eddsa",
};

/** Why an algorithm cannot be used, or undefined when it can. */
export function unsupportedAlgorithm(oid: string): string | undefined {
  const weak = WEAK[oid];
  if (weak !== undefined) return `signature algorithm ${weak} is too weak`;
  if (SCHEMES[oid] === undefined) return `signature algorithm ${oid} is not supported`;
  return undefined;
}

/** Whether `signature` over `data` verifies with `key` under the algorithm `oid`; false for any mismatch. */
export function verifySignature(
  oid: string,
  data: Uint8Array,
  signature: Uint8Array,
  key: KeyObject,
): boolean {
  const scheme = SCHEMES[oid];
  const keyType = key.asymmetricKeyType;
  if (scheme === undefined || keyType === undefined || KEY_KIND[keyType] !== scheme.kind) return false;
  try {
    return scheme.kind === "rsa"
      ? verify(scheme.hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature)
      : verify(scheme.hash, data, { key, dsaEncoding: "der" }, signature);
  } catch {
    return false; // malformed signature or key: not a signature we accept
  }
}
