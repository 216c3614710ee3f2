// Fan-out of DeviceChange events to in-process subscribers; a throwing subscriber never breaks a store write.
import type { DeviceChange } from "./types.ts";

export const RESYNC: DeviceChange = Object.freeze({ id: "", kind: "resync", bindings: Object.freeze([]) });

export class ChangeHub {
  readonly #listeners = new Set<(change: DeviceChange) => void>();

  subscribe(listener: (change: DeviceChange) => void): () => void {
    // A wrapper per subscription, so the same function subscribed twice is two subscriptions.
    const entry = (change: DeviceChange): void => listener(change);
    this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  get size(): number {
    return this.#listeners.size;
  }

  emit(change: DeviceChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (error) {
        // The write is committed already; the failure belongs to the subscriber, so report and go on.
        process.emitWarning(`device change listener failed: ${(error as Error)?.stack ?? String(error)}`);
      }
    }
  }
}
