// Reason codes for every denial, with the HTTP status and the Kong-compatible message each one answers with.
// Codes are stable strings: extend the table, never rename an entry (docs/reason-codes.md is held to it by a test).

export const REASONS = {
  no_certificate: { status: 401, message: "No required TLS certificate was sent" },
  untrusted_issuer: { status: 401, message: "TLS certificate failed verification" },
  certificate_expired: { status: 401, message: "TLS certificate failed verification" },
  certificate_not_yet_valid: { status: 401, message: "TLS certificate failed verification" },
  certificate_revoked: { status: 401, message: "TLS certificate failed verification" },
  revocation_unknown: { status: 401, message: "TLS certificate failed verification" },
  wrong_purpose: { status: 401, message: "TLS certificate failed verification" },
  bad_signature: { status: 401, message: "TLS certificate failed verification" },
  bad_certificate: { status: 401, message: "TLS certificate failed verification" },
  chain_too_long: { status: 401, message: "TLS certificate failed verification" },
  name_constraints_violation: { status: 401, message: "TLS certificate failed verification" },
  weak_algorithm: { status: 401, message: "TLS certificate failed verification" },
  chain_too_complex: { status: 401, message: "TLS certificate failed verification" },
  ca_not_allowed_for_route: { status: 403, message: "You cannot consume this service" },
  subject_not_allowed: { status: 403, message: "You cannot consume this service" },
  unknown_device: { status: 401, message: "TLS certificate failed verification" },
  device_suspended: { status: 403, message: "You cannot consume this service" },
  device_revoked: { status: 403, message: "You cannot consume this service" },
  device_pending: { status: 403, message: "You cannot consume this service" },
  group_not_allowed: { status: 403, message: "You cannot consume this service" },
  registry_unavailable: { status: 503, message: "The device registry is unavailable" },
  sni_host_mismatch: { status: 421, message: "Misdirected Request" },
  no_healthy_upstream: { status: 503, message: "Failure to get a peer from the ring-balancer" },
  // Enrollment (EST, RFC 7030): answered as text/plain `<reason>: <detail>`, as EST clients expect.
  no_credentials: { status: 401, message: "No enrollment credentials were sent" },
  token_invalid: { status: 401, message: "The enrollment token was not accepted" },
  token_spent: { status: 401, message: "The enrollment token was not accepted" },
  token_expired: { status: 401, message: "The enrollment token was not accepted" },
  csr_invalid: { status: 400, message: "The certification request is invalid" },
  proof_of_possession_failed: { status: 400, message: "The certification request is invalid" },
  csr_not_allowed: { status: 403, message: "The certification request is not allowed" },
  key_not_allowed: { status: 403, message: "The certification request is not allowed" },
  subject_changed: { status: 403, message: "The certification request is not allowed" },
  enrollment_rate_limited: { status: 429, message: "Too many enrollment requests" },
  // MQTT: answered as CONNACK "not authorized" (or "identifier rejected"), PUBACK/SUBACK 0x87 or a disconnect.
  topic_not_allowed: { status: 403, message: "You cannot consume this service" },
  client_id_not_allowed: { status: 403, message: "You cannot consume this service" },
  // Plugins (routes[].plugins, services[].plugins).
  request_too_large: { status: 413, message: "Request size limit exceeded" },
  length_required: { status: 411, message: "A valid Content-Length header is required" },
  rate_limited: { status: 429, message: "API rate limit exceeded" },
  rate_limit_unavailable: { status: 503, message: "The rate limit store is unavailable" },
  ip_not_allowed: { status: 403, message: "Your IP address is not allowed" },
} as const satisfies Record<string, { status: number; message: string }>;

export type ReasonCode = keyof typeof REASONS;

export function isReasonCode(value: string): value is ReasonCode {
  return Object.hasOwn(REASONS, value);
}
