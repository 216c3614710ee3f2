// Verifying an OCSP response (RFC 6960 §3.2, §4.2) for one certificate: who signed it, whether that signer
// may speak for the issuer, whether it answers for this very CertID, and whether it is current.
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { type Certificate, EKU, parseCertificate } from "../certificate.ts";
import { certificateLabel } from "../describe.ts";
import { crlReasonName } from "./crl.ts";
import { canonicalSerial, hex, sha1 } from "./der.ts";
import { CERT_ID_HASHES, certIdHashes } from "./ocsp-request.ts";
import { unsupportedAlgorithm, verifySignature } from "./signature.ts";

export type OcspProblem =
  | "malformed"
  | "unsuccessful"
  | "bad_signature"
  | "unauthorized_responder"
  | "no_matching_response"
  | "not_yet_valid"
  | "stale";

export class OcspResponseError extends Error {
  override name = "OcspResponseError";
  readonly problem: OcspProblem;
  constructor(problem: OcspProblem, message: string) {
    super(message);
    this.problem = problem;
  }
}

export interface OcspAnswer {
  readonly status: "good" | "revoked" | "unknown";
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  readonly revokedAt?: Date;
  readonly reason?: string;
  /** Who signed: the CA itself or its delegated responder, for logs. */
  readonly signer: string;
}

const BASIC = "1.3.6.1.5.5.7.48.1.1";
/** Responder and gateway clocks differ a little; a response "from the near future" is still fine. */
const CLOCK_SKEW_MS = 5 * 60_000;
const RESPONSE_STATUS = ["successful", "malformedRequest", "internalError", "tryLater", "4", "sigRequired"];
const STATUS = ["good", "revoked", "unknown"] as const;

const fail = (problem: OcspProblem, message: string): never => {
  throw new OcspResponseError(problem, message);
};

function decodeBasic(der: Uint8Array): pkijs.BasicOCSPResponse {
  let outer: pkijs.OCSPResponse;
  try {
    outer = pkijs.OCSPResponse.fromBER(der);
  } catch (err) {
    return fail("malformed", `not an OCSP response: ${(err as Error).message}`);
  }
  const code = outer.responseStatus.valueBlock.valueDec;
  if (code !== 0) {
    fail("unsuccessful", `responder answered ${RESPONSE_STATUS[code] ?? `status ${code}`}`);
  }
  if (outer.responseBytes?.responseType !== BASIC) fail("malformed", "not a basic OCSP response");
  try {
    return pkijs.BasicOCSPResponse.fromBER(
      outer.responseBytes?.response.valueBlock.valueHexView ?? new Uint8Array(),
    );
  } catch (err) {
    return fail("malformed", `unreadable basic OCSP response: ${(err as Error).message}`);
  }
}

function responderMatches(responderId: unknown, candidate: Certificate): boolean {
  if (responderId instanceof pkijs.RelativeDistinguishedNames) {
    return Buffer.from(responderId.valueBeforeDecode).equals(candidate.subjectDer);
  }
  if (responderId instanceof asn1js.OctetString) {
    return sha1(candidate.subjectPublicKeyBits).equals(Buffer.from(responderId.valueBlock.valueHexView));
  }
  return false;
}

/** The certificate whose key must verify the response: the issuer, or a delegate it authorised (§4.2.2.2). */
function authorisedSigner(basic: pkijs.BasicOCSPResponse, issuer: Certificate, now: Date): Certificate {
  const responderId = basic.tbsResponseData.responderID;
  if (responderMatches(responderId, issuer)) return issuer;
  for (const raw of basic.certs ?? []) {
    let candidate: Certificate;
    try {
      candidate = parseCertificate(new Uint8Array(raw.toSchema(false).toBER(false)));
    } catch {
      continue;
    }
    if (!responderMatches(responderId, candidate)) continue;
    const who = `responder ${certificateLabel(candidate)}`;
    if (!candidate.issuerDer.equals(issuer.subjectDer) || !safeVerify(candidate, issuer)) {
      fail("unauthorized_responder", `${who} is not issued by CA ${certificateLabel(issuer)}`);
    }
    if (!candidate.extKeyUsage?.includes(EKU.ocspSigning)) {
      fail("unauthorized_responder", `${who} lacks extendedKeyUsage id-kp-OCSPSigning`);
    }
    if (now < candidate.notBefore || now > candidate.notAfter) {
      fail("unauthorized_responder", `${who} is outside its validity period`);
    }
    return candidate;
  }
  return fail(
    "unauthorized_responder",
    `the response is signed by neither ${certificateLabel(issuer)} nor a delegate it issued`,
  );
}

function safeVerify(child: Certificate, issuer: Certificate): boolean {
  try {
    return child.node.verify(issuer.node.publicKey);
  } catch {
    return false;
  }
}

function findSingle(
  basic: pkijs.BasicOCSPResponse,
  cert: Certificate,
  issuer: Certificate,
): pkijs.SingleResponse {
  const serial = canonicalSerial(cert.serialNumber);
  for (const single of basic.tbsResponseData.responses) {
    const id = single.certID;
    const hashName = CERT_ID_HASHES[id.hashAlgorithm.algorithmId];
    if (hashName === undefined) continue;
    if (canonicalSerial(hex(id.serialNumber.valueBlock.valueHexView)) !== serial) continue;
    const ours = certIdHashes(issuer, hashName);
    if (
      ours.issuerNameHash.equals(Buffer.from(id.issuerNameHash.valueBlock.valueHexView)) &&
      ours.issuerKeyHash.equals(Buffer.from(id.issuerKeyHash.valueBlock.valueHexView))
    ) {
      return single;
    }
  }
  return fail(
    "no_matching_response",
    `the response has no status for serial ${serial} of ${certificateLabel(issuer)}`,
  );
}

function readStatus(single: pkijs.SingleResponse): Pick<OcspAnswer, "status" | "revokedAt" | "reason"> {
  const choice: unknown = single.certStatus;
  if (!(choice instanceof asn1js.BaseBlock) || choice.idBlock.tagClass !== 3) {
    return fail("malformed", "unreadable certStatus");
  }
  const status = STATUS[choice.idBlock.tagNumber];
  if (status === undefined) return fail("malformed", `unknown certStatus [${choice.idBlock.tagNumber}]`);
  if (status !== "revoked") return { status };
  const [time, reasonField] = choice instanceof asn1js.Constructed ? choice.valueBlock.value : [];
  if (!(time instanceof asn1js.GeneralizedTime)) return fail("malformed", "revoked without revocationTime");
  const reasonCode = reasonField instanceof asn1js.Constructed ? reasonField.valueBlock.value[0] : undefined;
  const reason =
    reasonCode instanceof asn1js.Enumerated ? crlReasonName(reasonCode.valueBlock.valueDec) : undefined;
  return { status, revokedAt: time.toDate(), ...(reason ? { reason } : {}) };
}

/**
 * The verified answer of `der` about `cert` (issued by `issuer`) at `now`; throws OcspResponseError naming
 * the problem. `maxAgeMs` bounds a response without nextUpdate.
 */
export function verifyOcspResponse(
  der: Uint8Array,
  cert: Certificate,
  issuer: Certificate,
  now: Date,
  maxAgeMs: number,
): OcspAnswer {
  const basic = decodeBasic(der);
  const algorithm = basic.signatureAlgorithm.algorithmId;
  const unsupported = unsupportedAlgorithm(algorithm);
  if (unsupported !== undefined) fail("bad_signature", unsupported);
  const signer = authorisedSigner(basic, issuer, now);
  const tbs = basic.tbsResponseData.tbsView;
  if (!verifySignature(algorithm, tbs, basic.signature.valueBlock.valueHexView, signer.node.publicKey)) {
    fail(
      "bad_signature",
      `the response signature does not verify with the key of ${certificateLabel(signer)}`,
    );
  }
  const single = findSingle(basic, cert, issuer);
  const { thisUpdate, nextUpdate } = single;
  const t = now.getTime();
  if (thisUpdate.getTime() > t + CLOCK_SKEW_MS) {
    fail("not_yet_valid", `the response's thisUpdate ${thisUpdate.toISOString()} is in the future`);
  }
  const expires = nextUpdate?.getTime() ?? thisUpdate.getTime() + maxAgeMs;
  if (expires < t) fail("stale", `the response expired at ${new Date(expires).toISOString()}`);
  return {
    ...readStatus(single),
    thisUpdate,
    nextUpdate,
    signer: signer === issuer ? `CA ${certificateLabel(issuer)}` : `delegate ${certificateLabel(signer)}`,
  };
}
