// The registry's enrollment records (EST, RFC 7030): one-time enrollment tokens, the certificates the
// gateway issued, and the issuance that binds a new certificate to its device in one transaction.
// Pure types: no I/O here. SQLite and PostgreSQL implement EnrollmentStore next to DeviceStore.
import type { Binding, DeviceStatus, DeviceStore } from "./types.ts";

/** A one-time enrollment token as stored: the secret itself is never stored, only its SHA-256. */
export interface EnrollmentToken {
  /** Public id, `tok_` and 16 hex digits; the token a device sends is `<id>.<secret>`. */
  readonly id: string;
  readonly deviceId: string;
  /** The enrollment profile (CA label) the token is good for. */
  readonly profile: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  /** Set when a certificate was issued with it (a token is spent only by a successful enrollment). */
  readonly usedAt: Date | undefined;
  readonly revokedAt: Date | undefined;
}

export interface NewEnrollmentToken {
  readonly id: string;
  /** SHA-256 of the secret part, lower-case hex. */
  readonly secretHash: string;
  readonly deviceId: string;
  readonly profile: string;
  readonly expiresAt: Date;
}

export interface EnrollmentTokenQuery {
  readonly deviceId?: string;
  /** Keyset pagination: tokens with id > after, in id order. */
  readonly after?: string;
  readonly limit: number;
}

export interface EnrollmentTokenPage {
  readonly tokens: readonly EnrollmentToken[];
  readonly next: string | undefined;
}

export const ISSUE_OPERATIONS = ["enroll", "reenroll"] as const;
export type IssueOperation = (typeof ISSUE_OPERATIONS)[number];

/** A certificate the gateway issued through enrollment. */
export interface IssuedCertificate {
  /** The serial number, lower-case hex without leading zeros stripped (as issued). */
  readonly serial: string;
  readonly deviceId: string;
  readonly profile: string;
  /** SHA-256 of the certificate DER, lower-case hex (the device's fingerprint binding). */
  readonly fingerprint: string;
  /** The subject, as OpenSSL prints it (`CN=device-042`). */
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly issuedAt: Date;
  readonly operation: IssueOperation;
  /** The certificate, PEM. */
  readonly pem: string;
  readonly revokedAt: Date | undefined;
  /** A CRL reason name (`keyCompromise`, `superseded` …) when revoked. */
  readonly revocationReason: string | undefined;
}

export interface IssuedCertificateQuery {
  readonly deviceId?: string;
  readonly profile?: string;
  /** Only revoked certificates (for the profile's CRL). */
  readonly revoked?: boolean;
  /** Keyset pagination: certificates with serial > after, in serial order. */
  readonly after?: string;
  readonly limit: number;
}

export interface IssuedCertificatePage {
  readonly certificates: readonly IssuedCertificate[];
  readonly next: string | undefined;
}

/**
 * One issuance, written in one transaction: the token is spent (if any), the certificate recorded, the
 * device created or checked, and its bindings changed. When any part fails nothing is written.
 */
export interface Issuance {
  readonly certificate: Omit<IssuedCertificate, "revokedAt" | "revocationReason">;
  /**
   * Spend this token (first enrollment by token): TokenUnusableError when it is unknown, used, revoked, expired
   * at `now`, or for another device or profile than the certificate's.
   */
  readonly tokenId?: string;
  /**
   * What the device must be: `absent` (it is created with `create`), or at this version (read by the caller,
   * which judged its status): StoreConflictError when it changed meanwhile.
   */
  readonly expect: { readonly absent: true } | { readonly version: number };
  /** How a device that does not exist yet is created (required when `expect.absent`). */
  readonly create?: { readonly status: DeviceStatus; readonly groups: readonly string[] };
  /** A new status for an existing device (a pending device enrolled by a token becomes active). */
  readonly status?: DeviceStatus;
  /** Bindings removed now (the name bindings a renewal replaces with fingerprints). */
  readonly unbind?: readonly Binding[];
  /** Bindings kept until `at`, then removed by retireBindings (the superseded certificate's fingerprint). */
  readonly retire?: readonly { readonly binding: Binding; readonly at: Date }[];
}

/**
 * The token cannot be spent: unknown, used, revoked, expired, or another device's or profile's (the message says
 * which).
 */
export class TokenUnusableError extends Error {
  override name = "TokenUnusableError";
  /** Why: the token is unknown, revoked, used, expired, or for another device or profile. */
  readonly why: "unknown" | "revoked" | "used" | "expired" | "mismatch";
  constructor(message: string, why: TokenUnusableError["why"]) {
    super(message);
    this.why = why;
  }
}
/** No issued certificate has this serial. */
export class CertificateNotFoundError extends Error {
  override name = "CertificateNotFoundError";
}
/** No enrollment token has this id. */
export class TokenNotFoundError extends Error {
  override name = "TokenNotFoundError";
}

export interface EnrollmentStore {
  createEnrollmentToken(token: NewEnrollmentToken): Promise<EnrollmentToken>;
  /** The token with this id and its secret's hash (for the EST handler's constant-time comparison). */
  findEnrollmentToken(id: string): Promise<{ token: EnrollmentToken; secretHash: string } | undefined>;
  listEnrollmentTokens(query: EnrollmentTokenQuery): Promise<EnrollmentTokenPage>;
  /** Marks the token revoked (kept for the record); TokenNotFoundError when unknown. Idempotent. */
  revokeEnrollmentToken(id: string, now: Date): Promise<EnrollmentToken>;

  /**
   * Records an issuance (see Issuance); the device's binding change is announced as a device change. The new
   * certificate's fingerprint binding is added; StoreConflictError when it (or a binding the device would
   * get) belongs to another device, when the serial or fingerprint was recorded already, or when `expect` does
   * not hold. A created device is announced as `created`, a changed one as `updated`.
   */
  recordIssuance(issuance: Issuance, now: Date): Promise<IssuedCertificate>;
  getIssuedCertificate(serial: string): Promise<IssuedCertificate | undefined>;
  listIssuedCertificates(query: IssuedCertificateQuery): Promise<IssuedCertificatePage>;
  /**
   * Revokes an issued certificate and, in the same transaction, removes its fingerprint binding from its device
   * (announced as a device change, so every node refuses it at once). CertificateNotFoundError when unknown;
   * revoking a revoked certificate changes nothing and returns it.
   */
  revokeIssuedCertificate(serial: string, reason: string, now: Date): Promise<IssuedCertificate>;

  /** Removes the bindings whose retirement time is at or before `now` (announced); returns how many. */
  retireBindings(now: Date): Promise<number>;
  /** The earliest retirement time still pending, if any (the caller sets a timer to it). */
  nextBindingRetirement(): Promise<Date | undefined>;
}

/** What both engines implement: the device registry and its enrollment records, in one database. */
export type RegistryStore = DeviceStore & EnrollmentStore;
