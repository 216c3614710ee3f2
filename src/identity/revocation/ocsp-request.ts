// Building an OCSP request (RFC 6960 §4.1) and the CertID it names, with SHA-1 as responders expect.
import { createHash } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import type { Certificate } from "../certificate.ts";

/** OIDs of the hashes a CertID may use, to recompute a responder's CertID whatever hash it chose. */
export const CERT_ID_HASHES: Record<string, string> = {
  "1.3.14.3.2.26": "sha1",
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
};
const SHA1 = "1.3.14.3.2.26";

/** The content octets of the certificate's serialNumber INTEGER, exactly as encoded (sign byte included). */
export function serialBytes(cert: Certificate): Uint8Array {
  return pkijs.Certificate.fromBER(cert.der).serialNumber.valueBlock.valueHexView;
}

export interface CertIdHashes {
  readonly issuerNameHash: Buffer;
  readonly issuerKeyHash: Buffer;
}

/** issuerNameHash and issuerKeyHash of `issuer` under the hash `hashName`. */
export function certIdHashes(issuer: Certificate, hashName: string): CertIdHashes {
  return {
    issuerNameHash: createHash(hashName).update(issuer.subjectDer).digest(),
    issuerKeyHash: createHash(hashName).update(issuer.subjectPublicKeyBits).digest(),
  };
}

export function buildCertId(cert: Certificate, issuer: Certificate): pkijs.CertID {
  const { issuerNameHash, issuerKeyHash } = certIdHashes(issuer, "sha1");
  return new pkijs.CertID({
    hashAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: SHA1, algorithmParams: new asn1js.Null() }),
    issuerNameHash: new asn1js.OctetString({ valueHex: issuerNameHash }),
    issuerKeyHash: new asn1js.OctetString({ valueHex: issuerKeyHash }),
    serialNumber: new asn1js.Integer({ valueHex: serialBytes(cert) }),
  });
}

/**
 * The DER of an unsigned OCSP request for `cert`. No nonce: most responders (and every CDN in front of
 * one) serve pre-produced responses and ignore it, and the response is cached anyway.
 */
export function buildOcspRequest(cert: Certificate, issuer: Certificate): Buffer {
  const request = new pkijs.OCSPRequest();
  request.tbsRequest.requestList = [new pkijs.Request({ reqCert: buildCertId(cert, issuer) })];
  return Buffer.from(request.toSchema(true).toBER(false));
}
