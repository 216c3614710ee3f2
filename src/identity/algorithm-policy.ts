// Algorithm policy for every certificate of a path (reason `weak_algorithm`), after the Web PKI's rules:
//   signatures  RSA PKCS#1 v1.5 or RSASSA-PSS with SHA-256/384/512, ECDSA with SHA-256/384/512, Ed25519.
//               MD2/MD4/MD5 and SHA-1 (collisions are practical), SHA-224, DSA and anything unknown are
//               refused. The signature on a trust anchor itself is never checked (it is trusted by
//               configuration, not by its signature), so an old SHA-1 self-signed root still works.
//   keys        the trust store's key policy: RSA with a modulus of minRsaBits..maxRsaBits (default
//               2048..8192) and a public exponent from rsaPublicExponents (default 65537 only: a huge
//               exponent makes every verification with that key cost as much as a private-key operation);
//               EC on one of the store's curves (default P-256, P-384, P-521); Ed25519. Ed448, DSA and
//               unknown key types are refused: a verifier should accept only what it has reviewed.
// The key policy of an issuer is checked before its key verifies anything, so that a key built to be
// expensive is refused for the price of reading it.
import { describeKey, type PublicKeyInfo } from "./algorithms.ts";
import type { Certificate } from "./certificate.ts";
import { certificateLabel } from "./describe.ts";
import type { PathFailure } from "./path-building.ts";
import type { TrustStore } from "./types.ts";

const STRONG_HASHES: ReadonlySet<string> = new Set(["sha256", "sha384", "sha512"]);
const STRONG_SIGNATURE_FAMILIES: ReadonlySet<string> = new Set([
  "sha256WithRSAEncryption",
  "sha384WithRSAEncryption",
  "sha512WithRSAEncryption",
  "ecdsa-with-SHA256",
  "ecdsa-with-SHA384",
  "ecdsa-with-SHA512",
  "rsassa-pss",
  "Ed25519",
]);
/** Curves a trust store may allow (`curves`); the default allows the first three. */
export const KNOWN_CURVES = [
  "P-256",
  "P-384",
  "P-521",
  "secp256k1",
  "brainpoolP256r1",
  "brainpoolP384r1",
  "brainpoolP512r1",
] as const;
export const DEFAULT_CURVES: readonly string[] = ["P-256", "P-384", "P-521"];
export const DEFAULT_RSA_EXPONENTS: readonly number[] = [65537];
export const DEFAULT_MAX_RSA_BITS = 8192;

const BROKEN_HASHES: Readonly<Record<string, string>> = {
  md2: "MD2",
  md4: "MD4",
  md5: "MD5",
  sha1: "SHA-1",
};

/** The algorithm `cert` was signed with by its issuer. */
export function checkSignatureAlgorithm(cert: Certificate): PathFailure | undefined {
  const { name, hash } = cert.signatureAlgorithm;
  const strong = STRONG_SIGNATURE_FAMILIES.has(name) && (name === "Ed25519" || STRONG_HASHES.has(hash ?? ""));
  if (strong) return undefined;
  const broken = hash === undefined ? undefined : BROKEN_HASHES[hash];
  return {
    reason: "weak_algorithm",
    detail:
      broken !== undefined
        ? `certificate ${certificateLabel(cert)} is signed with ${name}: ${broken} signatures are not accepted`
        : `certificate ${certificateLabel(cert)} is signed with ${name}${hash && name === "rsassa-pss" ? ` (${hash})` : ""}, which the algorithm policy does not accept`,
  };
}

/** The key policy fields of a trust store; EST enrollment judges requested keys with the same rules. */
export type KeyPolicy = Pick<TrustStore, "minRsaBits" | "maxRsaBits" | "rsaPublicExponents" | "curves">;

/** Why `key` is refused by `policy` (e.g. "RSA keys of fewer than 2048 bits are not accepted"), or undefined. */
export function keyPolicyProblem(key: PublicKeyInfo, policy: KeyPolicy): string | undefined {
  switch (key.type) {
    case "rsa": {
      const bits = key.bits ?? 0;
      if (bits < policy.minRsaBits)
        return `RSA keys of fewer than ${policy.minRsaBits} bits are not accepted`;
      if (bits > policy.maxRsaBits) return `RSA keys of more than ${policy.maxRsaBits} bits are not accepted`;
      const e = key.exponent ?? 0n;
      if (!policy.rsaPublicExponents.some((allowed) => BigInt(allowed) === e)) {
        const shown = e < 1n << 64n ? String(e) : `a ${e.toString(2).length}-bit number`;
        return `its public exponent ${shown} is not one of ${policy.rsaPublicExponents.join(", ")} (rsaPublicExponents)`;
      }
      return undefined;
    }
    case "ec":
      return key.curve !== undefined && policy.curves.includes(key.curve)
        ? undefined
        : `only the curves ${policy.curves.join(", ")} are accepted`;
    case "ed25519":
      return undefined;
    default:
      return "the key type is not accepted";
  }
}

/** `cert`'s own public key against the trust store's key policy. */
export function checkPublicKey(cert: Certificate, store: TrustStore): PathFailure | undefined {
  const key = cert.publicKey;
  const why = keyPolicyProblem(key, store);
  if (why === undefined) return undefined;
  return {
    reason: "weak_algorithm",
    detail: `certificate ${certificateLabel(cert)} has a ${describeKey(key)} key: ${why} (trust store "${store.name}")`,
  };
}
