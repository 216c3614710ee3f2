// The installer diagnostics report: what the gateway saw on one connection (SNI, TLS parameters, the chain
// presented, the path built, each policy's verdict and the server clock against the certificate), as JSON.
// Pure: the request handler gathers the inputs. Only public data goes in — certificates are summarised, never
// dumped, and nothing about keys beyond the public SPKI pin.
import type { Certificate } from "../identity/certificate.ts";
import type { ConnectionIdentity, Decision } from "../identity/types.ts";

export interface DiagnosticsInput {
  readonly identity: ConnectionIdentity;
  readonly listener: { readonly name: string; readonly clientAuth: string };
  /** Each auth policy evaluated for this request (listener-level and route), by policy id. */
  readonly decisions: readonly { readonly policy: string; readonly decision: Decision }[];
  readonly socket: {
    readonly protocol: string | null;
    readonly cipher?: string;
    readonly alpn?: string | false;
    /** OpenSSL's own verdict on the chain (meaningful when the listener asked for a certificate). */
    readonly authorized: boolean;
    readonly authorizationError?: string;
  };
  readonly now: Date;
  /**
   * The listener's hideReason: the report says what the client sent and whether each policy allows it,
   * never why (no reason, detail, OpenSSL error, parse error, validity against the server clock, nor the
   * trust store and path of an allowing policy, which next to a refusal would name the route's reason).
   */
  readonly hideReasons?: boolean;
}

export interface CertificateSummary {
  readonly subject: string;
  readonly issuer: string;
  readonly serialNumber: string;
  /** SHA-256 of the DER, hex. */
  readonly fingerprint: string;
  /** SHA-256 of the public key info, base64: what an `spki` pin compares. */
  readonly spkiSha256: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly isCA: boolean;
  readonly san: {
    readonly dns: readonly string[];
    readonly uri: readonly string[];
    readonly email: readonly string[];
    readonly ip: readonly string[];
  };
}

export interface PolicyReport {
  readonly policy: string;
  readonly allow: boolean;
  readonly reason?: string;
  readonly detail?: string;
  /** On allow: the trust store whose anchor ended the path, the path itself and the device id. */
  readonly trustStore?: string;
  readonly path?: readonly CertificateSummary[];
  readonly deviceId?: string | null;
  /** On allow: the window in which the whole path is valid, re-checked on every request. */
  readonly validFrom?: string;
  readonly validUntil?: string;
}

export interface DiagnosticsReport {
  readonly serverTime: string;
  readonly listener: { readonly name: string; readonly clientAuth: string };
  readonly connection: {
    readonly sni: string | null;
    readonly resumed: boolean;
    readonly tlsProtocol: string | null;
    readonly cipher: string | null;
    readonly alpn: string | null;
    readonly openssl: { readonly authorized: boolean; readonly error: string | null };
  };
  readonly certificate: {
    readonly sent: boolean;
    /** Why what the client sent could not be parsed, if so. */
    readonly parseError: string | null;
    /** Why what the client sent was not even parsed (over chainLimits), if so. */
    readonly overLimits: string | null;
    readonly chainFingerprint: string | null;
    /** The leaf first, then every other certificate the client sent, in order. */
    readonly chain: readonly CertificateSummary[];
  };
  /** The server clock against the leaf's validity: a device with a wrong clock shows up here. */
  readonly validity: {
    readonly notBefore: string;
    readonly notAfter: string;
    readonly secondsUntilNotAfter: number;
    readonly expired: boolean;
    readonly notBeforeInFuture: boolean;
    readonly secondsUntilNotBefore: number;
  } | null;
  readonly decisions: readonly PolicyReport[];
}

export function summarizeCertificate(cert: Certificate): CertificateSummary {
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serialNumber: cert.serialNumber,
    fingerprint: cert.fingerprint,
    spkiSha256: cert.spkiSha256,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    isCA: cert.isCA,
    san: { dns: [...cert.sanDns], uri: [...cert.sanUris], email: [...cert.sanEmails], ip: [...cert.sanIps] },
  };
}

/** Whole seconds from `now` to `at`, negative once `at` is past. */
const secondsFrom = (now: Date, at: Date) => Math.trunc((at.getTime() - now.getTime()) / 1000);

function policyReport(policy: string, decision: Decision): PolicyReport {
  if (!decision.allow) return { policy, allow: false, reason: decision.reason, detail: decision.detail };
  const { identity } = decision;
  return {
    policy,
    allow: true,
    trustStore: identity.trustStore,
    path: identity.path.map(summarizeCertificate),
    deviceId: identity.deviceId ?? null,
    validFrom: decision.notBefore.toISOString(),
    validUntil: decision.notAfter.toISOString(),
  };
}

export function diagnosticsReport(input: DiagnosticsInput): DiagnosticsReport {
  const { identity, socket, now } = input;
  const leaf = identity.leaf;
  const hide = input.hideReasons === true;
  const sent = leaf !== undefined || identity.parseError !== undefined || identity.overLimits !== undefined;
  return {
    serverTime: now.toISOString(),
    listener: { name: input.listener.name, clientAuth: input.listener.clientAuth },
    connection: {
      sni: identity.sni ?? null,
      resumed: identity.resumed,
      tlsProtocol: socket.protocol,
      cipher: socket.cipher ?? null,
      alpn: typeof socket.alpn === "string" ? socket.alpn : null,
      // Without a certificate OpenSSL's error (UNABLE_TO_GET_ISSUER_CERT) would mislead: nothing was judged.
      openssl: {
        authorized: socket.authorized,
        error: hide || !sent ? null : (socket.authorizationError ?? null),
      },
    },
    certificate: {
      sent,
      parseError: hide ? null : (identity.parseError ?? null),
      overLimits: hide ? null : (identity.overLimits?.detail ?? null),
      chainFingerprint: identity.chainFingerprint === "" ? null : identity.chainFingerprint,
      chain: leaf ? [leaf, ...identity.presented].map(summarizeCertificate) : [],
    },
    validity:
      leaf && !hide
        ? {
            notBefore: leaf.notBefore.toISOString(),
            notAfter: leaf.notAfter.toISOString(),
            secondsUntilNotAfter: secondsFrom(now, leaf.notAfter),
            expired: now.getTime() > leaf.notAfter.getTime(),
            notBeforeInFuture: now.getTime() < leaf.notBefore.getTime(),
            secondsUntilNotBefore: Math.max(0, secondsFrom(now, leaf.notBefore)),
          }
        : null,
    decisions: input.decisions.map((d) =>
      hide ? { policy: d.policy, allow: d.decision.allow } : policyReport(d.policy, d.decision),
    ),
  };
}
