// Algorithm policy for every certificate of a path (reason `weak_algorithm`), after the Web PKI's rules:
//   signatures  RSA PKCS#1 v1.5 or RSASSA-PSS with SHA-256/384/512, ECDSA with SHA-256/384/512, Ed25519.
//               MD2/MD4/MD5 and SHA-1 (collisions are practical), SHA-224, DSA and anything unknown are
//               refused. The signature on a trust anchor itself is never checked (it is trusted by
//               configuration, not by its signature), so an old SHA-1 self-signed root still works.
//   keys        RSA of at least the trust store's minRsaBits (default 2048); EC on P-256, P-384 or P-521;
//               Ed25519. Other curves (secp256k1, brainpool, explicit parameters), Ed448, DSA and unknown
//               key types are refused: a verifier should accept only what it has reviewed.
import { describeKey } from "./algorithms.ts";
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
const CURVES: ReadonlySet<string> = new Set(["P-256", "P-384", "P-521"]);

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

/** `cert`'s own public key against the policy and the store's minimum RSA size. */
export function checkPublicKey(cert: Certificate, store: TrustStore): PathFailure | undefined {
  const key = cert.publicKey;
  const fail = (why: string): PathFailure => ({
    reason: "weak_algorithm",
    detail: `certificate ${certificateLabel(cert)} has a ${describeKey(key)} key: ${why}`,
  });
  switch (key.type) {
    case "rsa":
      return (key.bits ?? 0) >= store.minRsaBits
        ? undefined
        : fail(
            `RSA keys of fewer than ${store.minRsaBits} bits are not accepted (trust store "${store.name}")`,
          );
    case "ec":
      return key.curve !== undefined && CURVES.has(key.curve)
        ? undefined
        : fail("only the curves P-256, P-384 and P-521 are accepted");
    case "ed25519":
      return undefined;
    default:
      return fail("the key type is not accepted");
  }
}
