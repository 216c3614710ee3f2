// The connection slots of one listener, accounted by standing: connections whose identity is not allowed
// (no valid certificate, or a denied one: suspended, unregistered, revoked …) share a small pool, and every
// certificate may hold a few connections at most. When a pool is full, the connection idle the longest in
// it makes room for the new one; a connection with a request in flight is never evicted.
import type { TLSSocket } from "node:tls";

export interface SlotLimits {
  readonly maxUnauthenticatedConnections: number;
  readonly maxConnectionsPerIdentity: number;
}

/** Which limit made the gateway close (evict) or refuse a connection; labels of the metric. */
export type SlotLimit = "maxUnauthenticatedConnections" | "maxConnectionsPerIdentity";

export interface Slot {
  readonly socket: TLSSocket;
  /** The leaf certificate's fingerprint: connections of one certificate are counted together. */
  readonly identity: string | undefined;
  /** Requests started and not yet answered. */
  inFlight: number;
  /** In the unauthenticated pool (short idle timeout, small cap). */
  limited: boolean;
  released: boolean;
}

export interface SlotEvents {
  /** A connection was evicted (closed idle to make room) or refused (no room, none idle). */
  limitHit(limit: SlotLimit, action: "evicted" | "refused"): void;
}

/** Insertion-ordered sets, least recently active first: the eviction order. */
class Recency {
  readonly #slots = new Set<Slot>();

  get size(): number {
    return this.#slots.size;
  }

  add(slot: Slot): void {
    this.#slots.add(slot);
  }

  touch(slot: Slot): void {
    if (this.#slots.delete(slot)) this.#slots.add(slot);
  }

  delete(slot: Slot): void {
    this.#slots.delete(slot);
  }

  /** The slot idle the longest (nothing in flight), if any. */
  oldestIdle(): Slot | undefined {
    for (const slot of this.#slots) if (slot.inFlight === 0) return slot;
    return undefined;
  }
}

export class ConnectionSlots {
  readonly #unauthenticated = new Recency();
  readonly #byIdentity = new Map<string, Recency>();
  readonly #events: SlotEvents;

  constructor(events: SlotEvents) {
    this.#events = events;
  }

  get unauthenticated(): number {
    return this.#unauthenticated.size;
  }

  /** Takes slots for a new connection, evicting idle ones when a pool is full; undefined: refuse it. */
  admit(
    socket: TLSSocket,
    identity: string | undefined,
    limited: boolean,
    limits: SlotLimits,
  ): Slot | undefined {
    const peers = identity === undefined ? undefined : this.#byIdentity.get(identity);
    if (peers && !this.#makeRoom(peers, limits.maxConnectionsPerIdentity, "maxConnectionsPerIdentity"))
      return undefined;
    if (
      limited &&
      !this.#makeRoom(
        this.#unauthenticated,
        limits.maxUnauthenticatedConnections,
        "maxUnauthenticatedConnections",
      )
    )
      return undefined;
    const slot: Slot = { socket, identity, inFlight: 0, limited, released: false };
    if (identity !== undefined) {
      const group = peers ?? new Recency();
      if (!peers) this.#byIdentity.set(identity, group);
      group.add(slot);
    }
    if (limited) this.#unauthenticated.add(slot);
    return slot;
  }

  /** A request started on the connection: it is now the most recently active of its pools. */
  requestStarted(slot: Slot): void {
    slot.inFlight++;
    if (slot.limited) this.#unauthenticated.touch(slot);
    if (slot.identity !== undefined) this.#byIdentity.get(slot.identity)?.touch(slot);
  }

  requestEnded(slot: Slot): void {
    slot.inFlight--;
  }

  /**
   * Moves a connection into the unauthenticated pool (its identity was denied) or out of it (allowed).
   * False when it must go in and the pool is full of connections with requests in flight: close it.
   */
  setLimited(slot: Slot, limited: boolean, limits: SlotLimits): boolean {
    if (slot.released || slot.limited === limited) return true;
    if (!limited) {
      this.#unauthenticated.delete(slot);
      slot.limited = false;
      return true;
    }
    if (
      !this.#makeRoom(
        this.#unauthenticated,
        limits.maxUnauthenticatedConnections,
        "maxUnauthenticatedConnections",
      )
    )
      return false;
    slot.limited = true;
    this.#unauthenticated.add(slot);
    return true;
  }

  /** Frees the connection's slots; idempotent (an evicted connection is released before it closes). */
  release(slot: Slot): void {
    if (slot.released) return;
    slot.released = true;
    if (slot.limited) this.#unauthenticated.delete(slot);
    if (slot.identity === undefined) return;
    const peers = this.#byIdentity.get(slot.identity);
    peers?.delete(slot);
    if (peers?.size === 0) this.#byIdentity.delete(slot.identity);
  }

  /** Evicts idle connections until the pool has room for one more; false when none is idle. */
  #makeRoom(pool: Recency, max: number, limit: SlotLimit): boolean {
    while (pool.size >= max) {
      const victim = pool.oldestIdle();
      if (!victim) {
        this.#events.limitHit(limit, "refused");
        return false;
      }
      this.release(victim);
      victim.socket.destroy();
      this.#events.limitHit(limit, "evicted");
    }
    return true;
  }
}
