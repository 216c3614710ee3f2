// Who is enrolling: the credential of an EST request, judged for one profile. A first enrollment is
// authenticated by a one-time token (HTTP Basic or Bearer, RFC 7030 §3.2.3) or by a factory certificate
// over mTLS; a renewal only by the device's current operational certificate, which must be valid, chain to
// the profile's trust store and belong to an active registered device (RFC 7030 §3.3.2, §4.2.2).

import { DEVICE_ID_PATTERN } from "../admin/validation.ts";
import type { CompiledEnrollmentProfile } from "../config/compile-enrollment.ts";
import type { Authenticator } from "../gateway/authenticator.ts";
import type { RegistryGate } from "../gateway/authorize.ts";
import type { Certificate } from "../identity/certificate.ts";
import { deviceIdOf } from "../identity/decide.ts";
import type { ReasonCode } from "../identity/reasons.ts";
import type { EnrollmentStore } from "../registry/enrollment-types.ts";
import type { ConnectionState } from "../tls/connection-state.ts";
import { credentialsOf, secretMatches, splitToken } from "./tokens.ts";

export type Credential =
  | { readonly via: "token"; readonly deviceId: string; readonly tokenId: string }
  | { readonly via: "factory"; readonly deviceId: string; readonly leaf: Certificate }
  | { readonly via: "certificate"; readonly deviceId: string; readonly leaf: Certificate };

export interface Refusal {
  readonly reason: ReasonCode;
  readonly detail: string;
  /** The device the refusal concerns, when the credential named one. */
  readonly deviceId?: string;
}

export interface CredentialDeps {
  readonly authenticator: Authenticator;
  readonly registry: RegistryGate | undefined;
  readonly store: EnrollmentStore;
}

const refuse = (reason: ReasonCode, detail: string, deviceId?: string): Refusal =>
  deviceId === undefined ? { reason, detail } : { reason, detail, deviceId };

/** The credential of a first enrollment (simpleenroll): a token when one is sent, else a factory certificate. */
export async function enrollCredential(
  deps: CredentialDeps,
  profile: CompiledEnrollmentProfile,
  state: ConnectionState,
  authorization: string | undefined,
  now: Date,
): Promise<Credential | Refusal> {
  if (authorization !== undefined) return tokenCredential(deps, profile, authorization, now);
  const leaf = state.identity.leaf;
  if (!leaf || !profile.factory) {
    const accepted = [
      profile.tokens ? "a token (Authorization: Basic or Bearer)" : undefined,
      profile.factory ? "a factory certificate" : undefined,
    ]
      .filter((a) => a !== undefined)
      .join(" or ");
    return refuse("no_credentials", `profile "${profile.name}" enrolls devices with ${accepted}`);
  }
  const decision = await deps.authenticator.decideForConnection(state, profile.factory, now);
  if (!decision.allow) return refuse(decision.reason, `factory certificate: ${decision.detail}`);
  const deviceId = deviceIdOf(leaf) ?? leaf.commonName;
  if (deviceId === undefined || !DEVICE_ID_PATTERN.test(deviceId)) {
    return refuse(
      "csr_not_allowed",
      `the factory certificate ${leaf.subject} names no usable device id (a urn:device: SAN or a common name)`,
    );
  }
  return { via: "factory", deviceId, leaf };
}

async function tokenCredential(
  deps: CredentialDeps,
  profile: CompiledEnrollmentProfile,
  authorization: string,
  now: Date,
): Promise<Credential | Refusal> {
  if (!profile.tokens)
    return refuse("token_invalid", `profile "${profile.name}" does not enroll with tokens`);
  const credentials = credentialsOf(authorization);
  if (credentials === undefined || "error" in credentials) {
    return refuse("token_invalid", credentials?.error ?? "no credentials in the Authorization header");
  }
  const parts = splitToken(credentials.token);
  if (!parts) return refuse("token_invalid", "not an enrollment token (tok_<id>.<secret>)");
  const found = await deps.store.findEnrollmentToken(parts.id);
  // Unknown and wrong-secret answer alike, so that token ids cannot be probed.
  if (!found || !secretMatches(parts.secret, found.secretHash)) {
    return refuse("token_invalid", `token ${parts.id} is unknown or its secret does not match`);
  }
  const { token } = found;
  const deviceId = token.deviceId;
  if (credentials.user !== undefined && credentials.user !== "" && credentials.user !== deviceId) {
    return refuse("token_invalid", `token ${token.id} is not for device "${credentials.user}"`, deviceId);
  }
  if (token.profile !== profile.name) {
    return refuse("token_invalid", `token ${token.id} is for profile "${token.profile}"`, deviceId);
  }
  if (token.revokedAt) return refuse("token_invalid", `token ${token.id} was revoked`, deviceId);
  if (token.usedAt) {
    return refuse("token_spent", `token ${token.id} was used at ${token.usedAt.toISOString()}`, deviceId);
  }
  if (token.expiresAt.getTime() <= now.getTime()) {
    return refuse("token_expired", `token ${token.id} expired at ${token.expiresAt.toISOString()}`, deviceId);
  }
  return { via: "token", deviceId, tokenId: token.id };
}

/** The credential of a renewal (simplereenroll): the current certificate of an active registered device. */
export async function renewalCredential(
  deps: CredentialDeps,
  profile: CompiledEnrollmentProfile,
  state: ConnectionState,
  now: Date,
): Promise<Credential | Refusal> {
  const leaf = state.identity.leaf;
  if (!leaf) return refuse("no_certificate", "a renewal is authenticated by the current certificate");
  const decision = await deps.authenticator.decideForConnection(state, profile.renewal, now);
  if (!decision.allow) return refuse(decision.reason, decision.detail);
  if (!deps.registry) return refuse("registry_unavailable", "no device registry");
  const outcome = await deps.registry.check(decision.identity, profile.renewal, now);
  if (!outcome.allow) return refuse(outcome.reason, outcome.detail, decision.identity.deviceId);
  const deviceId = outcome.deviceId ?? decision.identity.deviceId;
  if (deviceId === undefined) return refuse("unknown_device", "the certificate maps to no device");
  return { via: "certificate", deviceId, leaf };
}
