// Picking a service's target for one attempt: round-robin, least-connections, or a consistent-hash ring on a
// key (the device id, else the client address). Each picks only among the targets `usable` accepts, so
// unhealthy, ejected and already-tried targets are skipped the same way by every strategy.
import { createHash } from "node:crypto";

export type BalancingStrategy = "round-robin" | "least-connections" | "consistent-hash";

export interface Balancer {
  /**
   * A target index among those `usable` accepts, or undefined when there is none. A `retry` pick leaves the
   * rotation where it is, so that a target failing every first attempt does not get the next first attempt too.
   */
  pick(key: string, usable: (index: number) => boolean, retry?: boolean): number | undefined;
}

/** Targets in turn; an unusable one is passed over and the turn goes on after the one picked. */
export class RoundRobinBalancer implements Balancer {
  readonly #count: number;
  #next = 0;

  constructor(count: number) {
    this.#count = count;
  }

  pick(_key: string, usable: (index: number) => boolean, retry = false): number | undefined {
    for (let step = 0; step < this.#count; step++) {
      const index = (this.#next + step) % this.#count;
      if (usable(index)) {
        if (!retry) this.#next = (index + 1) % this.#count;
        return index;
      }
    }
    return undefined;
  }
}

/** The target with the fewest requests in flight; ties go round-robin so that an idle service still spreads. */
export class LeastConnectionsBalancer implements Balancer {
  readonly #count: number;
  readonly #inFlight: (index: number) => number;
  #next = 0;

  constructor(count: number, inFlight: (index: number) => number) {
    this.#count = count;
    this.#inFlight = inFlight;
  }

  pick(_key: string, usable: (index: number) => boolean, retry = false): number | undefined {
    let best: number | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    for (let step = 0; step < this.#count; step++) {
      const index = (this.#next + step) % this.#count;
      if (!usable(index)) continue;
      const load = this.#inFlight(index);
      if (load < bestLoad) {
        best = index;
        bestLoad = load;
      }
    }
    if (best !== undefined && !retry) this.#next = (best + 1) % this.#count;
    return best;
  }
}

/** Virtual nodes per target: enough for an even spread (a few percent) over a handful of targets. */
export const VIRTUAL_NODES = 160;

/** A 32-bit point on the ring. */
function ringPoint(text: string): number {
  return createHash("sha1").update(text).digest().readUInt32BE(0);
}

/**
 * A hash ring of virtual nodes, placed by each target's own name (its URL), not its position in the list: a key
 * sticks to its target, adding a target moves only the keys the new one takes over (about 1/N), and a key whose
 * target is unusable walks on to the next target of the ring, where it stays until its own one is back.
 */
export class ConsistentHashBalancer implements Balancer {
  readonly #points: Uint32Array;
  readonly #owners: Uint16Array;
  readonly #count: number;

  /** `names`: one stable name per target (its URL); a name listed twice gets the ring points once. */
  constructor(names: readonly string[], virtualNodes = VIRTUAL_NODES) {
    const nodes: { point: number; owner: number }[] = [];
    names.forEach((name, owner) => {
      if (names.indexOf(name) !== owner) return;
      for (let v = 0; v < virtualNodes; v++) nodes.push({ point: ringPoint(`${name}#${v}`), owner });
    });
    nodes.sort((a, b) => a.point - b.point || a.owner - b.owner);
    this.#points = Uint32Array.from(nodes, (n) => n.point);
    this.#owners = Uint16Array.from(nodes, (n) => n.owner);
    this.#count = names.length;
  }

  pick(key: string, usable: (index: number) => boolean): number | undefined {
    const points = this.#points;
    if (points.length === 0) return undefined;
    const hash = ringPoint(key);
    // The first point at or after the key's hash, wrapping around.
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((points[mid] as number) < hash) lo = mid + 1;
      else hi = mid;
    }
    const seen = new Set<number>();
    for (let step = 0; step < points.length && seen.size < this.#count; step++) {
      const owner = this.#owners[(lo + step) % points.length] as number;
      if (seen.has(owner)) continue;
      seen.add(owner);
      if (usable(owner)) return owner;
    }
    return undefined;
  }
}

export function createBalancer(
  strategy: BalancingStrategy,
  names: readonly string[],
  inFlight: (index: number) => number,
): Balancer {
  switch (strategy) {
    case "least-connections":
      return new LeastConnectionsBalancer(names.length, inFlight);
    case "consistent-hash":
      return new ConsistentHashBalancer(names);
    default:
      return new RoundRobinBalancer(names.length);
  }
}
