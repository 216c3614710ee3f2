// Maps OpenSSL's verdict on a failed handshake (handshake mode) to a reason code, for logs and metrics:
// the device itself only sees the connection fail.
import type { ReasonCode } from "../identity/reasons.ts";

const BY_CODE: Record<string, ReasonCode> = {
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: "no_certificate",
  CERT_HAS_EXPIRED: "certificate_expired",
  CERT_NOT_YET_VALID: "certificate_not_yet_valid",
  CERT_REVOKED: "certificate_revoked",
  INVALID_PURPOSE: "wrong_purpose",
  CERT_SIGNATURE_FAILURE: "bad_signature",
  CERT_CHAIN_TOO_LONG: "chain_too_long",
  UNABLE_TO_GET_ISSUER_CERT: "untrusted_issuer",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "untrusted_issuer",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "untrusted_issuer",
  SELF_SIGNED_CERT_IN_CHAIN: "untrusted_issuer",
  DEPTH_ZERO_SELF_SIGNED_CERT: "untrusted_issuer",
};

/** The reason for a failed handshake, or undefined when the failure was not about the certificate. */
export function reasonForHandshakeError(
  error: Error & { code?: string },
  authorizationError?: Error | string | null,
) {
  const authCode = typeof authorizationError === "string" ? authorizationError : authorizationError?.message;
  return (authCode ? BY_CODE[authCode] : undefined) ?? (error.code ? BY_CODE[error.code] : undefined);
}
