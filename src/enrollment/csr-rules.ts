// What a profile issues for a certification request, or why it refuses it: the key (type in the profile's
// keyTypes, size and curve within its trust store's key policy), proof of possession, and the names. A first
// enrollment gets subject CN=<device id> and SAN urn:device:<device id>, and may ask for nothing else; a
// renewal must ask for exactly the subject and SANs of the certificate it renews (RFC 7030 §4.2.2).
import type { CompiledEnrollmentProfile } from "../config/compile-enrollment.ts";
import { keyPolicyProblem } from "../identity/algorithm-policy.ts";
import { describeKey } from "../identity/algorithms.ts";
import type { Certificate } from "../identity/certificate.ts";
import { deviceUri } from "../pki/issue.ts";
import {
  type CertificationRequest,
  CsrError,
  parseCsr,
  readCsrBody,
  verifyProofOfPossession,
} from "./csr.ts";
import type { Credential, Refusal } from "./est-credentials.ts";
import { subjectForDevice } from "./issuing-ca.ts";

/** What the CA signs: the request's key under the names the profile allows. */
export interface ApprovedRequest {
  readonly spki: Uint8Array;
  readonly subjectDer: Uint8Array;
  readonly sanUris: readonly string[];
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && [...a].sort().join("\n") === [...b].sort().join("\n");

/** Parses and judges the request body; a refusal names the reason code and what was wrong. */
export async function approveRequest(
  profile: CompiledEnrollmentProfile,
  credential: Credential,
  body: Buffer,
): Promise<ApprovedRequest | Refusal> {
  const { deviceId } = credential;
  let csr: CertificationRequest;
  try {
    csr = parseCsr(readCsrBody(body));
  } catch (err) {
    if (err instanceof CsrError) return { reason: "csr_invalid", detail: err.message, deviceId };
    throw err;
  }
  const keyType = csr.publicKey.type as string;
  if (!(profile.keyTypes as readonly string[]).includes(keyType)) {
    return {
      reason: "key_not_allowed",
      detail: `the request's key is ${describeKey(csr.publicKey)}: profile "${profile.name}" takes ${profile.keyTypes.join(", ")} keys`,
      deviceId,
    };
  }
  const store = profile.renewal.trustStores[0];
  const weak = store ? keyPolicyProblem(csr.publicKey, store) : undefined;
  if (weak !== undefined) {
    return {
      reason: "key_not_allowed",
      detail: `the request's key is ${describeKey(csr.publicKey)}: ${weak}`,
      deviceId,
    };
  }
  // After the key policy, so that a key built to be expensive is refused before it verifies anything.
  try {
    await verifyProofOfPossession(csr);
  } catch (err) {
    if (err instanceof CsrError)
      return { reason: "proof_of_possession_failed", detail: err.message, deviceId };
    throw err;
  }
  return credential.via === "certificate"
    ? renewalNames(csr, credential.leaf, deviceId)
    : enrollmentNames(csr, deviceId);
}

function enrollmentNames(csr: CertificationRequest, deviceId: string): ApprovedRequest | Refusal {
  const uri = deviceUri(deviceId);
  const wrongCn = csr.commonNames.find((cn) => cn !== deviceId);
  if (wrongCn !== undefined || csr.commonNames.length > 1) {
    return {
      reason: "csr_not_allowed",
      detail: `the request's CN "${wrongCn ?? csr.commonNames.join(", ")}" is not the device id "${deviceId}"`,
      deviceId,
    };
  }
  const extra = [
    ...csr.san.uris.filter((u) => u !== uri).map((u) => `URI:${u}`),
    ...csr.san.dns.map((d) => `DNS:${d}`),
    ...csr.san.emails.map((e) => `email:${e}`),
    ...csr.san.ips.map((i) => `IP:${i}`),
    ...(csr.san.other > 0 ? [`${csr.san.other} other name(s)`] : []),
  ];
  if (extra.length > 0) {
    return {
      reason: "csr_not_allowed",
      detail: `the request asks for subject alternative names beyond ${uri}: ${extra.join(", ")}`,
      deviceId,
    };
  }
  return { spki: csr.spki, subjectDer: subjectForDevice(deviceId), sanUris: [uri] };
}

function renewalNames(
  csr: CertificationRequest,
  current: Certificate,
  deviceId: string,
): ApprovedRequest | Refusal {
  // Compared as names (RFC 4514 text), not bytes: a device's CSR may encode a CN as UTF8String where the
  // certificate has a PrintableString. The new certificate gets the current one's exact bytes.
  if (csr.subject !== current.subject) {
    return {
      reason: "subject_changed",
      detail: `the request's subject "${csr.subject}" is not the current certificate's "${current.subject}"`,
      deviceId,
    };
  }
  const same =
    sameSet(csr.san.uris, current.sanUris) &&
    sameSet(csr.san.dns, current.sanDns) &&
    sameSet(csr.san.emails, current.sanEmails) &&
    sameSet(csr.san.ips, current.sanIps) &&
    csr.san.other === 0;
  if (!same) {
    return {
      reason: "subject_changed",
      detail: "the request's subject alternative names are not the current certificate's",
      deviceId,
    };
  }
  if (current.sanDns.length + current.sanEmails.length + current.sanIps.length > 0) {
    return {
      reason: "csr_not_allowed",
      detail: "the current certificate has DNS, e-mail or IP names; enrollment issues device URIs only",
      deviceId,
    };
  }
  return { spki: csr.spki, subjectDer: current.subjectDer, sanUris: [...current.sanUris] };
}
