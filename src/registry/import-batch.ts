// The cooperative side of a bulk import: long loops that give the event loop back every few milliseconds,
// so that a 100,000-device import never holds up the request path for more than one slice.
import { setImmediate as nextTurn } from "node:timers/promises";
import type { NewDevice } from "./types.ts";
import { BatchNormalizer, type NormalizedBatch } from "./validate.ts";

/** Longest stretch of import work between two turns of the event loop. */
export const SLICE_MS = 8;

/**
 * Tells a loop when to yield: `due()` is true once `sliceMs` of work went by since the last yield (the
 * clock is read every `every` calls only); `yield()` gives the event loop one turn (I/O included).
 */
export class Slicer {
  readonly #sliceMs: number;
  readonly #every: number;
  #calls = 0;
  #since = performance.now();

  constructor(sliceMs = SLICE_MS, every = 32) {
    this.#sliceMs = sliceMs;
    this.#every = every;
  }

  due(): boolean {
    if (++this.#calls % this.#every !== 0) return false;
    return performance.now() - this.#since >= this.#sliceMs;
  }

  async yield(): Promise<void> {
    await nextTurn();
    this.#since = performance.now();
  }

  /** Yields when due: `await slicer.tick()` once per loop iteration. */
  async tick(): Promise<void> {
    if (this.due()) await this.yield();
  }
}

/** normalizeBatch (validate.ts) in slices: the same checks and failures; the event loop gets a turn every SLICE_MS. */
export async function normalizeBatchInSlices(devices: readonly NewDevice[]): Promise<NormalizedBatch> {
  const batch = new BatchNormalizer();
  const slicer = new Slicer();
  for (let index = 0; index < devices.length; index++) {
    await slicer.tick();
    batch.add(devices[index] as NewDevice, index);
  }
  return batch.result();
}
