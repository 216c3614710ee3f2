// The EST server (RFC 7030) on a gateway listener: cacerts and csrattrs per CA label, and enrollment and
// renewal: credential → rate limit → request checks → device standing → issuance bound to the device in
// one store transaction → base64 PKCS#7 answer. Every enrollment request is a decision with a reason
// code (GET /decisions, metrics, sampled refusal logs), answered as EST clients expect.
import type { CompiledEnrollment, CompiledEnrollmentProfile } from "../config/compile-enrollment.ts";
import { ConfigError } from "../config/errors.ts";
import type { Authenticator } from "../gateway/authenticator.ts";
import type { RegistryGate } from "../gateway/authorize.ts";
import type { DecisionLog, DecisionRecord } from "../gateway/decision-log.ts";
import type { DenialLog } from "../gateway/denial-log.ts";
import type { Logger } from "../gateway/log.ts";
import type { GatewayMetrics } from "../gateway/metrics.ts";
import { REASONS, type ReasonCode } from "../identity/reasons.ts";
import { PkiError } from "../pki/errors.ts";
import { type IssueOperation, type RegistryStore, TokenUnusableError } from "../registry/enrollment-types.ts";
import { StoreConflictError, StoreUnavailableError } from "../registry/types.ts";
import type { ConnectionState } from "../tls/connection-state.ts";
import { noteAnswer } from "../tls/connection-state.ts";
import type { GatewayRequest, GatewayResponse } from "../tls/listener.ts";
import { approveRequest } from "./csr-rules.ts";
import { type Credential, enrollCredential, type Refusal, renewalCredential } from "./est-credentials.ts";
import {
  BodyError,
  type EstOperation,
  MAX_BODY_BYTES,
  parseEstPath,
  readBody,
  sendBase64,
  sendText,
} from "./est-http.ts";
import { type IssuingCa, issueFromRequest, loadIssuingCa } from "./issuing-ca.ts";
import { certsOnly, csrAttrs, toBase64Body } from "./pkcs7.ts";
import { WindowLimiter } from "./rate-limit.ts";
import { bindingChanges, standingFor } from "./standing.ts";

export interface EstDeps {
  readonly authenticator: Authenticator;
  readonly registry: RegistryGate | undefined;
  readonly store: RegistryStore;
  readonly decisions: DecisionLog;
  readonly metrics: GatewayMetrics;
  readonly denials: DenialLog;
  readonly logger: Logger;
  /** Called after an issuance that retires bindings, with the earliest retirement time. */
  readonly retiring?: (at: Date) => void;
}

export interface EstContext {
  readonly listener: { readonly name: string; readonly hideReason: boolean };
  readonly state: ConnectionState;
  readonly host: string;
  readonly path: string;
  readonly bodyTimeoutMs: number;
  readonly startedAt: number;
}

/** What the access log line of an EST request needs. */
export interface EstOutcome {
  readonly route: string;
  readonly reason?: ReasonCode;
  readonly deviceId?: string;
  readonly bytes: number;
}

const KEY_TYPE_OIDS: Record<string, string> = {
  ec: "1.2.840.10045.2.1",
  rsa: "1.2.840.113549.1.1.1",
  ed25519: "1.3.101.112",
};
/** ecdsa-with-SHA256: the signature a CSR should carry (RFC 7030 §4.5.2's example). */
const SIGNATURE_OID = "1.2.840.10045.4.3.2";

/** One profile at run time: its loaded CA, its static answers and its rate limiter. */
interface Profile {
  readonly config: CompiledEnrollmentProfile;
  readonly ca: IssuingCa;
  readonly cacerts: string;
  readonly csrattrs: string;
  readonly limiter: WindowLimiter;
}

export class EstService {
  readonly #profiles: ReadonlyMap<string, Profile>;
  readonly #default: Profile;
  readonly #listeners: ReadonlySet<string>;

  private constructor(profiles: Profile[], listeners: ReadonlySet<string>) {
    this.#profiles = new Map(profiles.map((p) => [p.config.name, p]));
    this.#default = profiles[0] as Profile;
    this.#listeners = listeners;
  }

  /** Loads every profile's CA key; a CA that cannot be used is a ConfigError naming its profile. */
  static async create(enrollment: CompiledEnrollment, configFile: string): Promise<EstService> {
    const profiles = await Promise.all(
      enrollment.profiles.map(async (config, i): Promise<Profile> => {
        let ca: IssuingCa;
        try {
          ca = await loadIssuingCa({ cert: config.ca.cert, key: config.ca.key, chain: [...config.ca.chain] });
        } catch (err) {
          if (!(err instanceof PkiError)) throw err;
          throw new ConfigError(configFile, [
            { path: ["enrollment", "profiles", i, "ca"], message: err.message },
          ]);
        }
        const ders = [ca.cert, ...ca.chain].map((c) => new Uint8Array(c.rawData));
        const oids = [...config.keyTypes.map((t) => KEY_TYPE_OIDS[t] as string), SIGNATURE_OID];
        return {
          config,
          ca,
          cacerts: toBase64Body(certsOnly(ders)),
          csrattrs: toBase64Body(csrAttrs(oids)),
          limiter: new WindowLimiter(config.rateLimit.requests, config.rateLimit.intervalMs),
        };
      }),
    );
    return new EstService(profiles, enrollment.listeners);
  }

  serves(listener: string): boolean {
    return this.#listeners.has(listener);
  }

  /** The issuing CAs, by profile name (for the CRL publisher). */
  get issuers(): ReadonlyMap<string, { readonly config: CompiledEnrollmentProfile; readonly ca: IssuingCa }> {
    return this.#profiles;
  }

  async handle(
    deps: EstDeps,
    req: GatewayRequest,
    res: GatewayResponse,
    ctx: EstContext,
  ): Promise<EstOutcome> {
    const at = parseEstPath(ctx.path, req.method ?? "GET");
    if (at.kind !== "operation") {
      noteAnswer(ctx.state, "refused");
      const bytes =
        at.kind === "not-found"
          ? sendText(res, 404, "no EST operation at this path", ctx.startedAt)
          : sendText(res, 405, `use ${at.allow}`, ctx.startedAt, { allow: at.allow });
      return { route: "est", bytes };
    }
    const profile = at.label === undefined ? this.#default : this.#profiles.get(at.label);
    if (!profile) {
      noteAnswer(ctx.state, "refused");
      return { route: "est", bytes: sendText(res, 404, `no CA label "${at.label}"`, ctx.startedAt) };
    }
    const route = `est:${profile.config.name}`;
    switch (at.operation) {
      case "cacerts":
        noteAnswer(ctx.state, "passed");
        return { route, bytes: sendBase64(res, "application/pkcs7-mime", profile.cacerts, ctx.startedAt) };
      case "csrattrs":
        noteAnswer(ctx.state, "passed");
        return { route, bytes: sendBase64(res, "application/csrattrs", profile.csrattrs, ctx.startedAt) };
      default:
        return { route, ...(await this.#enroll(deps, req, res, ctx, profile, at.operation)) };
    }
  }

  async #enroll(
    deps: EstDeps,
    req: GatewayRequest,
    res: GatewayResponse,
    ctx: EstContext,
    profile: Profile,
    operation: Exclude<EstOperation, "cacerts" | "csrattrs">,
  ): Promise<Omit<EstOutcome, "route">> {
    const now = new Date();
    const op: IssueOperation = operation === "simpleenroll" ? "enroll" : "reenroll";
    const refused = (r: Refusal, extraHeaders?: Record<string, string>) =>
      this.#refuse(deps, res, ctx, profile, op, r, extraHeaders);
    try {
      const authorization = req.headers.authorization;
      const credential =
        op === "enroll"
          ? await enrollCredential(deps, profile.config, ctx.state, authorization, now)
          : await renewalCredential(deps, profile.config, ctx.state, now);
      if ("reason" in credential) return refused(credential);
      const wait = profile.limiter.take(credential.deviceId, now.getTime());
      if (wait !== undefined) {
        return refused(
          {
            reason: "enrollment_rate_limited",
            detail: `over ${profile.config.rateLimit.requests} requests per ${profile.config.rateLimit.intervalMs / 1000}s`,
            deviceId: credential.deviceId,
          },
          { "retry-after": String(wait) },
        );
      }
      let body: Buffer;
      try {
        body = await readBody(req, MAX_BODY_BYTES, ctx.bodyTimeoutMs);
      } catch (err) {
        if (!(err instanceof BodyError)) throw err;
        return refused({ reason: "csr_invalid", detail: err.message, deviceId: credential.deviceId });
      }
      const approved = await approveRequest(profile.config, credential, body);
      if ("reason" in approved) return refused(approved);
      const standing = await standingFor(deps.store, profile.config, credential, now);
      if (standing.kind === "refused") return refused(standing.refusal);
      if (standing.kind === "pending") return this.#pending(deps, res, ctx, profile, op, credential);
      const leaf = await issueFromRequest(profile.ca, {
        spki: approved.spki,
        subjectDer: approved.subjectDer,
        deviceId: credential.deviceId,
        sanUris: approved.sanUris,
        validityMs: profile.config.validityMs,
        now,
      });
      const changes = await bindingChanges(deps.store, profile.config, credential, standing.device, now);
      await deps.store.recordIssuance(
        {
          certificate: {
            serial: leaf.serial,
            deviceId: credential.deviceId,
            profile: profile.config.name,
            fingerprint: leaf.fingerprint,
            subject: leaf.subject,
            notBefore: leaf.notBefore,
            notAfter: leaf.notAfter,
            issuedAt: now,
            operation: op,
            pem: leaf.pem,
          },
          ...(credential.via === "token" ? { tokenId: credential.tokenId } : {}),
          expect: standing.device ? { version: standing.device.version } : { absent: true },
          ...(standing.device
            ? standing.device.status !== "active"
              ? { status: "active" as const }
              : {}
            : { create: { status: "active" as const, groups: profile.config.groups } }),
          unbind: changes.unbind,
          retire: changes.retire,
        },
        now,
      );
      const first = changes.retire.map((r) => r.at).sort((a, b) => a.getTime() - b.getTime())[0];
      if (first) deps.retiring?.(first);
      noteAnswer(ctx.state, credential.via === "certificate" ? "allowed" : "passed");
      this.#record(deps, ctx, profile, op, credential, {
        allow: true,
        detail: `issued ${leaf.serial} (${leaf.fingerprint}) on a ${credential.via} credential`,
      });
      deps.metrics.recordEnrollment(profile.config.name, op, "issued", undefined);
      deps.logger.info(
        {
          profile: profile.config.name,
          operation: op,
          deviceId: credential.deviceId,
          via: credential.via,
          serial: leaf.serial,
          fingerprint: leaf.fingerprint,
          notAfter: leaf.notAfter.toISOString(),
        },
        "certificate issued",
      );
      const pkcs7 = toBase64Body(certsOnly([leaf.der]));
      return {
        deviceId: credential.deviceId,
        bytes: sendBase64(res, "application/pkcs7-mime; smime-type=certs-only", pkcs7, ctx.startedAt),
      };
    } catch (err) {
      if (err instanceof TokenUnusableError) {
        // Spent or expired between the credential check and the issuance (a concurrent enrollment).
        const reason =
          err.why === "used" ? "token_spent" : err.why === "expired" ? "token_expired" : "token_invalid";
        return refused({ reason, detail: err.message });
      }
      if (err instanceof StoreUnavailableError) {
        return refused({ reason: "registry_unavailable", detail: err.message }, { "retry-after": "5" });
      }
      if (err instanceof StoreConflictError) {
        noteAnswer(ctx.state, "refused");
        deps.logger.warn({ err: err.message, profile: profile.config.name }, "enrollment conflict");
        return {
          bytes: sendText(res, 409, `conflict: ${err.message}; retry`, ctx.startedAt, { "retry-after": "1" }),
        };
      }
      deps.logger.error({ err, profile: profile.config.name }, "enrollment failure");
      return { bytes: sendText(res, 500, "An unexpected error occurred", ctx.startedAt) };
    }
  }

  #pending(
    deps: EstDeps,
    res: GatewayResponse,
    ctx: EstContext,
    profile: Profile,
    op: IssueOperation,
    credential: Credential,
  ): Omit<EstOutcome, "route"> {
    const detail = `device "${credential.deviceId}" awaits an operator's approval`;
    // Polling as Retry-After says is what a pending device is asked to do: it does not use up its rate limit.
    profile.limiter.refund(credential.deviceId);
    noteAnswer(ctx.state, "passed");
    this.#record(deps, ctx, profile, op, credential, { allow: false, reason: "device_pending", detail });
    deps.metrics.recordEnrollment(profile.config.name, op, "pending", "device_pending");
    const retryAfter = String(Math.ceil(profile.config.retryAfterMs / 1000));
    const text = ctx.listener.hideReason ? "pending approval" : `device_pending: ${detail}`;
    return {
      reason: "device_pending",
      deviceId: credential.deviceId,
      bytes: sendText(res, 202, text, ctx.startedAt, { "retry-after": retryAfter }),
    };
  }

  #refuse(
    deps: EstDeps,
    res: GatewayResponse,
    ctx: EstContext,
    profile: Profile,
    op: IssueOperation,
    refusal: Refusal,
    extraHeaders: Record<string, string> = {},
  ): Omit<EstOutcome, "route"> {
    const { reason, detail, deviceId } = refusal;
    noteAnswer(ctx.state, "denied");
    const record = this.#record(deps, ctx, profile, op, undefined, {
      allow: false,
      reason,
      detail,
      deviceId,
    });
    deps.metrics.recordEnrollment(profile.config.name, op, "refused", reason);
    deps.denials.log(ctx.state.source, "enrollment refused", {
      ...record,
      peer: ctx.state.peer,
      operation: op,
    });
    const { status, message } = REASONS[reason];
    const text = ctx.listener.hideReason ? message : `${reason}: ${detail}`;
    const headers =
      status === 401 ? { ...extraHeaders, "www-authenticate": 'Basic realm="est"' } : extraHeaders;
    return {
      reason,
      ...(deviceId ? { deviceId } : {}),
      bytes: sendText(res, status, text, ctx.startedAt, headers),
    };
  }

  #record(
    deps: EstDeps,
    ctx: EstContext,
    profile: Profile,
    op: IssueOperation,
    credential: Credential | undefined,
    outcome: { allow: boolean } & Partial<
      Pick<DecisionRecord, "reason" | "detail" | "deviceId" | "fingerprint" | "subject">
    >,
  ): DecisionRecord {
    const presented = ctx.state.identity.leaf;
    const record: DecisionRecord = {
      at: new Date().toISOString(),
      listener: ctx.listener.name,
      route: `est:${profile.config.name}/${op}`,
      host: ctx.host,
      ...(ctx.state.identity.sni ? { sni: ctx.state.identity.sni } : {}),
      enforced: true,
      fingerprint: presented?.fingerprint,
      subject: presented?.subject,
      deviceId: credential?.deviceId,
      ...stripUndefined(outcome),
      allow: outcome.allow,
    };
    deps.decisions.record(record);
    deps.metrics.recordDecision(record);
    return record;
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
