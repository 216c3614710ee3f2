// Test helper: builds OCSP responses with pkijs, correct or broken on purpose (bad signature, wrong CertID,
// unauthorised signer...), to exercise what openssl's responder never gets wrong.
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import type { Minted } from "../../testing/mint.ts";
import { sha1 } from "../der.ts";

const BASIC = "1.3.6.1.5.5.7.48.1.1";

export interface ResponseSpec {
  readonly status: "good" | "revoked" | "unknown";
  readonly revokedAt?: Date;
  /** CRLReason code of a revoked answer. */
  readonly reason?: number;
  /** Who signs; its certificate is embedded unless it is the issuing CA (`embed: false`). */
  readonly signer: Minted;
  readonly embed?: boolean;
  readonly byKey?: boolean;
  readonly thisUpdate?: Date;
  /** null: no nextUpdate. Default: an hour ahead. */
  readonly nextUpdate?: Date | null;
  /** Answer for another serial than the one asked about. */
  readonly wrongCertId?: boolean;
  /** Flip a bit of the signature after signing. */
  readonly corruptSignature?: boolean;
  /** A non-successful OCSPResponseStatus (e.g. 3, tryLater). */
  readonly responseStatus?: number;
}

function certStatus(spec: ResponseSpec): asn1js.BaseBlock {
  if (spec.status === "good") return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 0 } });
  if (spec.status === "unknown") return new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 2 } });
  const value: asn1js.BaseBlock[] = [new asn1js.GeneralizedTime({ valueDate: spec.revokedAt ?? new Date() })];
  if (spec.reason !== undefined) {
    value.push(
      new asn1js.Constructed({
        idBlock: { tagClass: 3, tagNumber: 0 },
        value: [new asn1js.Enumerated({ value: spec.reason })],
      }),
    );
  }
  return new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber: 1 }, value });
}

/** The CertID of the first request in an OCSP request's DER. */
export function requestedCertId(requestDer: Uint8Array): pkijs.CertID {
  const request = pkijs.OCSPRequest.fromBER(requestDer);
  const first = request.tbsRequest.requestList[0];
  if (first === undefined) throw new Error("empty OCSP request");
  return first.reqCert;
}

export async function buildOcspResponse(certId: pkijs.CertID, spec: ResponseSpec): Promise<Buffer> {
  if (spec.responseStatus !== undefined) {
    const status = new asn1js.Enumerated({ value: spec.responseStatus });
    return Buffer.from(new pkijs.OCSPResponse({ responseStatus: status }).toSchema().toBER(false));
  }
  const signerCert = pkijs.Certificate.fromBER(spec.signer.cert.der);
  let id = certId;
  if (spec.wrongCertId) {
    const other = Buffer.from(certId.serialNumber.valueBlock.valueHexView);
    other[other.length - 1] = (other[other.length - 1] ?? 0) ^ 1;
    id = new pkijs.CertID({
      hashAlgorithm: certId.hashAlgorithm,
      issuerNameHash: certId.issuerNameHash,
      issuerKeyHash: certId.issuerKeyHash,
      serialNumber: new asn1js.Integer({ valueHex: other }),
    });
  }
  const now = Date.now();
  const basic = new pkijs.BasicOCSPResponse();
  basic.tbsResponseData.responderID = spec.byKey
    ? new asn1js.OctetString({ valueHex: sha1(spec.signer.cert.subjectPublicKeyBits) })
    : signerCert.subject;
  basic.tbsResponseData.producedAt = new Date(now);
  const nextUpdate = spec.nextUpdate === null ? undefined : (spec.nextUpdate ?? new Date(now + 3_600_000));
  basic.tbsResponseData.responses.push(
    new pkijs.SingleResponse({
      certID: id,
      certStatus: certStatus(spec),
      thisUpdate: spec.thisUpdate ?? new Date(now - 60_000),
      ...(nextUpdate ? { nextUpdate } : {}),
    }),
  );
  if (spec.embed !== false) basic.certs = [signerCert];
  await basic.sign(spec.signer.keys.privateKey, "SHA-256");
  if (spec.corruptSignature) {
    const sig = basic.signature.valueBlock.valueHexView;
    sig[10] = (sig[10] ?? 0) ^ 0x01;
  }
  const response = new pkijs.OCSPResponse({
    responseStatus: new asn1js.Enumerated({ value: 0 }),
    responseBytes: new pkijs.ResponseBytes({
      responseType: BASIC,
      response: new asn1js.OctetString({ valueHex: basic.toSchema().toBER(false) }),
    }),
  });
  return Buffer.from(response.toSchema().toBER(false));
}
