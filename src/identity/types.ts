// The values the identity engine works on: trust stores, what a connection presented, a route's auth
// policy, and the Decision. Pure data: no sockets, no HTTP, no storage.
import type { Certificate } from "./certificate.ts";
import type { ReasonCode } from "./reasons.ts";

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
  /** Normalised SNI, undefined when the client sent none. */
  readonly sni: string | undefined;
  readonly listener: string;
  readonly resumed: boolean;
}

/** A route's compiled auth policy. */
export interface AuthPolicy {
  /** Stable id, part of decision cache keys. */
  readonly id: string;
  /** Trust stores this route accepts, in preference order. */
  readonly trustStores: readonly TrustStore[];
}

/** The authenticated identity handed to plugins, headers and logs. */
export interface DeviceIdentity {
  readonly leaf: Certificate;
  /** The validated path from the leaf's issuer up to and including the anchor. */
  readonly path: readonly Certificate[];
  readonly trustStore: string;
  readonly deviceId: string | undefined;
}

export type Decision =
  | {
      readonly allow: true;
      readonly identity: DeviceIdentity;
      /** The validity window of the whole path: re-checked on every request. */
      readonly notBefore: Date;
      readonly notAfter: Date;
    }
  | {
      readonly allow: false;
      readonly reason: ReasonCode;
      /** Human sentence for logs and `portcullis verify`, never sent to clients. */
      readonly detail: string;
    };
