// What the gateway knows about one TLS connection: the identity parsed once at the handshake, the verdicts
// already reached on it, and whether it counts as authenticated. Stored on the socket under a symbol, so
// that HTTP/1.1 (`req.socket`) and HTTP/2 (the session's socket proxy) requests both reach it.
import type { ConnectionIdentity, Decision } from "../identity/types.ts";

const kState = Symbol("portcullis.connection");

export interface ConnectionState {
  readonly identity: ConnectionIdentity;
  /** Verdicts by auth policy id, computed once per connection and chain, with the revocation epoch. */
  readonly decisions: Map<string, { readonly decision: Decision; readonly epoch: number }>;
  /** True once the chain verified against a trust store of the listener. */
  authenticated: boolean;
  /** The registry device this connection authenticated as, so its connections can be closed at once. */
  deviceId?: string;
}

type Carrier = { [kState]?: ConnectionState };

export function attachConnectionState(socket: object, state: ConnectionState): void {
  (socket as Carrier)[kState] = state;
}

export function connectionStateOf(socket: object | null | undefined): ConnectionState | undefined {
  return socket ? (socket as Carrier)[kState] : undefined;
}
