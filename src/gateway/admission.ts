// Judges each new TLS connection once, right after the handshake: parses what the client presented and
// computes the listener-level verdict. In handshake mode a denied connection is closed before any HTTP
// byte is read; in application mode the verdict only decides which limits the connection gets.
import type { TLSSocket } from "node:tls";
import type { CompiledListener } from "../config/compile.ts";
import type { ConnectionIdentity } from "../identity/types.ts";
import { type PresentedChains, readConnectionIdentity } from "../tls/connection-identity.ts";
import { ConnectionDecisions, type ConnectionState } from "../tls/connection-state.ts";
import type { SessionNames } from "../tls/session-names.ts";
import type { Authenticator } from "./authenticator.ts";
import { noteDecision } from "./authorize.ts";
import type { DecisionLog } from "./decision-log.ts";
import { addressSource, type DenialLog } from "./denial-log.ts";
import type { GatewayMetrics } from "./metrics.ts";

export interface AdmissionDeps {
  readonly authenticator: Authenticator;
  readonly chains: PresentedChains;
  readonly sessionNames: SessionNames;
  readonly denials: DenialLog;
  readonly decisions: DecisionLog;
  readonly metrics: GatewayMetrics;
}

/**
 * The state of an admitted connection. It lives as long as the connection, idle or not, so it holds what
 * requests need and nothing more: the verdicts sit in ConnectionDecisions (one inline), and the log source
 * is spelled out only when a refusal is logged.
 */
class AdmittedConnection implements ConnectionState {
  readonly identity: ConnectionIdentity;
  readonly decisions = new ConnectionDecisions();
  authenticated = false;
  refusedInARow = 0;
  readonly peer: string;
  deviceId: string | undefined = undefined;
  withDevice: ConnectionState["withDevice"] = undefined;
  /** The leaf's fingerprint when the chain verified at the handshake: refusals are logged under it. */
  verifiedFingerprint: string | undefined = undefined;

  constructor(identity: ConnectionIdentity, peer: string) {
    this.identity = identity;
    this.peer = peer;
  }

  get source(): string {
    const fingerprint = this.verifiedFingerprint;
    return fingerprint === undefined ? addressSource(this.peer) : `certificate ${fingerprint}`;
  }
}

export function admitConnection(
  socket: TLSSocket,
  listener: CompiledListener,
  deps: AdmissionDeps,
): ConnectionState | undefined {
  const identity = readConnectionIdentity(
    socket,
    listener.name,
    deps.chains,
    deps.sessionNames,
    deps.authenticator.limits,
  );
  const peer = socket.remoteAddress ?? "";
  const state = new AdmittedConnection(identity, peer);
  if (listener.clientAuth === "off") return state;
  // Judged with the revocation data loaded now: a status that needs fetching (OCSP, distribution points)
  // is not waited for here but decided per request, where the route's policy fetches it.
  const decided = deps.authenticator.decide(identity, listener.policy, new Date());
  const verdict = !decided.allow && decided.reason === "revocation_unknown" ? undefined : decided;
  state.authenticated = verdict?.allow ?? true;
  if (state.authenticated && identity.leaf) state.verifiedFingerprint = identity.leaf.fingerprint;
  if (listener.clientAuth !== "handshake") return state;
  // OpenSSL's verdict (when it verified against the trust stores) is a second, independent check.
  const opensslVerified = !listener.sendCaNames || socket.authorized;
  if ((verdict?.allow ?? true) && opensslVerified) return state;
  const onlyOpensslRefused = verdict === undefined || verdict.allow;
  const record = noteDecision(
    deps,
    state,
    onlyOpensslRefused
      ? {
          allow: false,
          reason: "untrusted_issuer",
          detail: `OpenSSL disagreed: ${socket.authorizationError}`,
        }
      : verdict,
    { listener: listener.name, now: new Date() },
  );
  deps.metrics.recordHandshakeFailure(listener.name, record.reason);
  deps.denials.log(state.source, "connection refused", { ...record, peer });
  return undefined;
}
