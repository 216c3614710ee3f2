// The values the identity engine works on: trust stores, what a connection presented, a route's auth
// policy, and the Decision. Pure data: no sockets, no HTTP, no storage.
import type { Certificate } from "./certificate.ts";
import type { ChainLimit } from "./limits.ts";
import type { Profile } from "./profile.ts";
import type { ReasonCode } from "./reasons.ts";
import type { RevocationSettings } from "./revocation/types.ts";

export type Purpose = "client" | "server" | "any";

/** A named set of CA certificates, compiled from config. */
export interface TrustStore {
  readonly name: string;
  /** Self-issued CA certificates: path building ends at one of these. */
  readonly anchors: readonly Certificate[];
  /** Other CA certificates of the store, offered to path building as candidate issuers. */
  readonly intermediates: readonly Certificate[];
  /** Most certificates in a path, leaf and anchor included. */
  readonly maxDepth: number;
  /** Required extendedKeyUsage of the leaf. */
  readonly purpose: Purpose;
  /** Every certificate of the store as one PEM bundle, for TLS secure contexts. */
  readonly pem: string;
  /** A notBefore this far in the future is still accepted (devices with a wrong clock). */
  readonly notBeforeGraceMs: number;
  /** RFC 5280 certificate profile: strict, or lenient on presence/format rules for legacy PKIs. */
  readonly profile: Profile;
  /** Key policy, checked before a key verifies anything: RSA modulus range in bits… */
  readonly minRsaBits: number;
  readonly maxRsaBits: number;
  /** …the RSA public exponents accepted… */
  readonly rsaPublicExponents: readonly number[];
  /** …and the EC curves accepted (Ed25519 is always accepted). */
  readonly curves: readonly string[];
  readonly revocation: RevocationSettings;
  /** Just-in-time registration of unknown devices with a valid chain. */
  readonly autoRegister: "off" | "pending" | "active";
}

/** What one TLS connection presented, parsed once per socket. */
export interface ConnectionIdentity {
  /** The client's end-entity certificate; undefined when none was sent. */
  readonly leaf: Certificate | undefined;
  /** Other certificates the client sent (or that a previous full handshake of the same leaf sent). */
  readonly presented: readonly Certificate[];
  /** SHA-256 over leaf + presented: the key of every verdict cache. Empty without a certificate. */
  readonly chainFingerprint: string;
  /** Set when the client sent a certificate that could not be parsed. */
  readonly parseError?: string;
  /** Set when what the client sent was over the chain limits before it was parsed (then leaf is undefined). */
  readonly overLimits?: { readonly limit: ChainLimit; readonly detail: string };
  /** Normalised SNI, undefined when the client sent none. */
  readonly sni: string | undefined;
  readonly listener: string;
  readonly resumed: boolean;
}

/** A route's certificate matchers, compiled: undefined when the certificate matches, else why not. */
export type CertificateMatcher = (
  leaf: Certificate,
  path: readonly Certificate[],
) => { readonly reason: ReasonCode; readonly detail: string } | undefined;

/** A route's compiled auth policy. */
export interface AuthPolicy {
  /** Stable id, part of decision cache keys. */
  readonly id: string;
  /** Trust stores this route accepts, in preference order. */
  readonly trustStores: readonly TrustStore[];
  /** report-only: requests pass; what would have been denied is logged and counted. */
  readonly enforce?: "enforce" | "report-only";
  /** Subject/SAN/SPKI/fingerprint/intermediate matchers; undefined means any valid chain. */
  readonly match?: CertificateMatcher;
  /** Whether the certificate must map to an active device in the registry. */
  readonly registry?: "required" | "optional" | "off";
  /** Device groups allowed; undefined means any. */
  readonly groups?: readonly string[];
}

/** The authenticated identity handed to plugins, headers and logs. */
export interface DeviceIdentity {
  readonly leaf: Certificate;
  /** The validated path from the leaf's issuer up to and including the anchor. */
  readonly path: readonly Certificate[];
  readonly trustStore: string;
  readonly deviceId: string | undefined;
  /** Device groups from the registry, when the policy looked the device up. */
  readonly groups?: readonly string[];
}

export type Decision =
  | {
      readonly allow: true;
      readonly identity: DeviceIdentity;
      /**
       * The validity window of the whole path, re-checked on every request. With a trust store's
       * notBeforeGrace, notBefore is the leaf's notBefore less the grace (never before a CA's notBefore).
       */
      readonly notBefore: Date;
      readonly notAfter: Date;
      /** How far ahead the leaf's notBefore was when decided, when notBeforeGrace let it in (for logs). */
      readonly graceUsedMs?: number;
    }
  | {
      readonly allow: false;
      readonly reason: ReasonCode;
      /** Human sentence for logs and `portcullis verify`, never sent to clients. */
      readonly detail: string;
      /** For `chain_too_complex`: the chainLimits entry that stopped the engine (a metric label). */
      readonly limit?: ChainLimit;
    };
