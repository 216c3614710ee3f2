// What the gateway knows about one TLS connection: the identity parsed once at the handshake, the verdicts
// already reached on it, its standing (authenticated or not) and how many requests in a row were refused. Stored on the socket under a symbol, so
// that HTTP/1.1 (`req.socket`) and HTTP/2 (the session's socket proxy) requests both reach it.
import type { ConnectionIdentity, Decision, DeviceIdentity } from "../identity/types.ts";

const kState = Symbol("portcullis.connection");

/** A verdict remembered on a connection, with the revocation epoch it was reached under. */
export interface DecisionMemo {
  readonly decision: Decision;
  readonly epoch: number;
}

/** Verdicts by auth policy id (a Map will do; ConnectionDecisions is the lean one). */
export interface DecisionMemos {
  get(policyId: string): DecisionMemo | undefined;
  set(policyId: string, memo: DecisionMemo): unknown;
}

/**
 * Verdicts by auth policy id. Nearly every connection meets one policy (a device talks to its route), so
 * the first is held inline and a Map is made only for a second one: an idle fleet holds one per connection.
 */
export class ConnectionDecisions implements DecisionMemos {
  #policyId: string | undefined = undefined;
  #memo: DecisionMemo | undefined = undefined;
  #others: Map<string, DecisionMemo> | undefined = undefined;

  get(policyId: string): DecisionMemo | undefined {
    return policyId === this.#policyId ? this.#memo : this.#others?.get(policyId);
  }

  set(policyId: string, memo: DecisionMemo): this {
    if (this.#policyId === undefined || this.#policyId === policyId) {
      this.#policyId = policyId;
      this.#memo = memo;
    } else {
      this.#others ??= new Map();
      this.#others.set(policyId, memo);
    }
    return this;
  }
}

export interface ConnectionState {
  readonly identity: ConnectionIdentity;
  /** Verdicts by auth policy id, computed once per connection and chain, with the revocation epoch. */
  readonly decisions: DecisionMemos;
  /**
   * The connection's standing: set at the handshake when the chain verified against a trust store of the
   * listener; cleared by a denial (suspended, unregistered, revoked, not matched …), set again by an allowed
   * request. A connection that is not authenticated gets the listener's unauthenticated limits.
   */
  authenticated: boolean;
  /** Requests in a row the gateway refused on this connection (denied, or 400/404/421). */
  refusedInARow: number;
  /** The client's address as the socket reports it. */
  readonly peer: string;
  /**
   * Who the refusals on this connection are logged for (sampled per source): the certificate when its
   * chain verified at the handshake (a client cannot mint those), else the client's address.
   */
  readonly source: string;
  /** The registry device this connection authenticated as, so its connections can be closed at once. */
  deviceId?: string;
  /**
   * The device groups this connection's rights were fixed with when it was opened (an MQTT session's topic
   * allow-list): a change of the device's groups closes it, as HTTP requests are judged with the new groups.
   */
  grantedGroups?: readonly string[];
  /** The last identity merged with its registry device (authorize.ts), reused while neither changes. */
  withDevice?: {
    readonly base: DeviceIdentity;
    readonly deviceId: string | undefined;
    readonly groups: readonly string[];
    readonly merged: DeviceIdentity;
  };
}

type Carrier = { [kState]?: ConnectionState };

export function attachConnectionState(socket: object, state: ConnectionState): void {
  (socket as Carrier)[kState] = state;
}

export function connectionStateOf(socket: object | null | undefined): ConnectionState | undefined {
  return socket ? (socket as Carrier)[kState] : undefined;
}

/** What the gateway answered a request with, as far as the connection's standing is concerned. */
export type Answer =
  /** The route's auth policy allowed the identity: the connection is authenticated. */
  | "allowed"
  /** The route's auth policy denied the identity: the connection loses its standing. */
  | "denied"
  /** Refused before any policy (bad request, no route, SNI/Host mismatch): standing unchanged. */
  | "refused"
  /** Passed to the upstream without a policy (a public route). */
  | "passed";

export function noteAnswer(state: ConnectionState, answer: Answer): void {
  if (answer === "allowed") state.authenticated = true;
  else if (answer === "denied") state.authenticated = false;
  state.refusedInARow = answer === "denied" || answer === "refused" ? state.refusedInARow + 1 : 0;
}
