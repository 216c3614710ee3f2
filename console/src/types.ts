// The admin API's documents, as the console reads them (docs/admin-api.md).

import type { DeviceJson } from "../../src/admin/device-json.ts";
import type { DecisionRecord } from "../../src/gateway/decision-log.ts";
import type { Binding, DeviceStatus } from "../../src/registry/types.ts";

export type { Binding, DeviceStatus };
export type Device = DeviceJson;

export interface DevicePage {
  readonly devices: readonly Device[];
  readonly next: string | null;
}

export type { DecisionRecord };

export interface DecisionSummary {
  readonly minutes: readonly {
    readonly at: string;
    readonly allow: number;
    readonly deny: number;
    readonly reasons: Readonly<Record<string, number>>;
  }[];
}

export interface Status {
  readonly status: string;
  readonly version: string;
  readonly uptimeSeconds: number;
  readonly configGeneration: number;
  readonly listeners: readonly { name: string; address: string; port: number; clientAuth: string }[];
  readonly store?: { kind: string; ok: boolean; since: string; error?: string };
  readonly lastReload?: { result: "ok" | "error"; at: string; error?: string };
  readonly connections?: { open: number };
}

export interface FleetSummary {
  readonly devices: {
    readonly total: number;
    readonly active: number;
    readonly suspended: number;
    readonly revoked: number;
    readonly pending: number;
  };
}

export interface ExpiringDevice {
  readonly deviceId: string;
  readonly notAfter: string;
  readonly daysLeft: number;
  readonly source: string;
  readonly fingerprint?: string;
  readonly serial?: string;
}

export interface Expiring {
  readonly within: string;
  readonly devices: readonly ExpiringDevice[];
}

export interface ExpiryHistogram {
  readonly total: number;
  readonly buckets: readonly { label: string; count: number }[];
}

export interface TrustCa {
  readonly subject: string;
  readonly issuer?: string;
  readonly kind?: "anchor" | "intermediate";
  readonly fingerprint: string;
  readonly notBefore?: string;
  readonly notAfter: string;
  readonly daysLeft: number;
}

export interface TrustCrl {
  readonly issuer: string;
  readonly source: string;
  readonly thisUpdate: string | null;
  readonly nextUpdate: string | null;
  readonly fresh: boolean;
  readonly revoked: number;
  readonly crlNumber?: string | null;
}

export interface TrustOcsp {
  readonly enabled: boolean;
  readonly responder?: string | null;
  readonly maxAgeSeconds?: number;
  readonly cachedResponses?: number;
}

export interface TrustStore {
  readonly name: string;
  readonly cas: readonly TrustCa[];
  readonly revocation?: {
    readonly mode: string;
    readonly scope?: string;
    readonly crls?: readonly TrustCrl[];
    /** Configured CRL files and URLs, each with whether a CRL from it is loaded. */
    readonly sources?: readonly { readonly source: string; readonly loaded: boolean }[];
    readonly ocsp?: TrustOcsp;
    readonly error?: string;
  };
}

export interface Trust {
  readonly trustStores: readonly TrustStore[];
}
