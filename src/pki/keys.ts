// Key algorithms of the PKI: generation, PKCS#8 PEM export/import and the matching signature parameters.
import { createPrivateKey, createPublicKey, type KeyObject, type webcrypto } from "node:crypto";
import { PkiError } from "./errors.ts";
import { toPem } from "./pem.ts";

export type KeyAlgorithm = "ec-p256" | "ec-p384" | "rsa-2048" | "rsa-3072" | "rsa-4096";
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = [
  "ec-p256",
  "ec-p384",
  "rsa-2048",
  "rsa-3072",
  "rsa-4096",
];
export const DEFAULT_KEY_ALGORITHM: KeyAlgorithm = "ec-p256";

export function isKeyAlgorithm(value: string): value is KeyAlgorithm {
  return (KEY_ALGORITHMS as readonly string[]).includes(value);
}

const RSA_HASH = "SHA-256";

/** WebCrypto import/generate parameters of an algorithm. */
function keyParams(algorithm: KeyAlgorithm): webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams {
  switch (algorithm) {
    case "ec-p256":
      return { name: "ECDSA", namedCurve: "P-256" };
    case "ec-p384":
      return { name: "ECDSA", namedCurve: "P-384" };
    default:
      return { name: "RSASSA-PKCS1-v1_5", hash: RSA_HASH };
  }
}

function rsaModulusLength(algorithm: KeyAlgorithm): number {
  return Number(algorithm.slice("rsa-".length));
}

/**
 * The signature parameters a key of this algorithm signs certificates and CRLs with. The hash follows the
 * curve size for ECDSA (RFC 5480 §4); RSA keys carry SHA-256 in their own algorithm object.
 */
export function signingAlgorithm(algorithm: KeyAlgorithm): webcrypto.EcdsaParams | webcrypto.Algorithm {
  switch (algorithm) {
    case "ec-p256":
      return { name: "ECDSA", hash: "SHA-256" };
    case "ec-p384":
      return { name: "ECDSA", hash: "SHA-384" };
    default:
      return { name: "RSASSA-PKCS1-v1_5", hash: RSA_HASH } as webcrypto.Algorithm;
  }
}

/** A new extractable key pair: extractable because the private key is written to disk as PKCS#8. */
export async function generateKeyPair(
  algorithm: KeyAlgorithm = DEFAULT_KEY_ALGORITHM,
): Promise<CryptoKeyPair> {
  const params = keyParams(algorithm);
  const genParams = algorithm.startsWith("rsa-")
    ? { ...params, modulusLength: rsaModulusLength(algorithm), publicExponent: new Uint8Array([1, 0, 1]) }
    : params;
  return (await crypto.subtle.generateKey(genParams, true, ["sign", "verify"])) as CryptoKeyPair;
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  return toPem(await crypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

/** The algorithm of a node:crypto private or public key, or undefined when Portcullis does not issue with it. */
export function keyAlgorithmOf(key: KeyObject): KeyAlgorithm | undefined {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === "ec") {
    if (details?.namedCurve === "prime256v1") return "ec-p256";
    if (details?.namedCurve === "secp384r1") return "ec-p384";
    return undefined;
  }
  if (key.asymmetricKeyType === "rsa") {
    const candidate = `rsa-${details?.modulusLength ?? 0}`;
    return isKeyAlgorithm(candidate) ? candidate : undefined;
  }
  return undefined;
}

/**
 * A stored private key back as a WebCrypto key pair (the public half derived from it), so a CA can sign
 * again. PKCS#8 is what we write; traditional "EC/RSA PRIVATE KEY" PEM is accepted too. `source` names
 * the file in error messages.
 */
export async function importPrivateKeyPem(
  pem: string,
  source = "private key",
): Promise<{ keys: CryptoKeyPair; algorithm: KeyAlgorithm }> {
  if (!/-----BEGIN (?:EC |RSA )?PRIVATE KEY-----/.test(pem)) {
    throw new PkiError(`${source}: not a PEM private key`);
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey({ key: pem, format: "pem" });
  } catch (err) {
    throw new PkiError(`${source}: not a PEM private key (${(err as Error).message})`);
  }
  const algorithm = keyAlgorithmOf(keyObject);
  if (!algorithm) {
    throw new PkiError(`${source}: unsupported key type (use one of ${KEY_ALGORITHMS.join(", ")})`);
  }
  const params = keyParams(algorithm);
  const pkcs8 = keyObject.export({ type: "pkcs8", format: "der" });
  const spki = createPublicKey(keyObject).export({ type: "spki", format: "der" });
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, params, true, ["sign"]);
  const publicKey = await crypto.subtle.importKey("spki", spki, params, true, ["verify"]);
  return { keys: { privateKey, publicKey }, algorithm };
}
