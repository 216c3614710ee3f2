// Watches the config file and every file it references, and calls back (debounced) when one changes.
// Polling stats (fs.watchFile) rather than fs.watch: it survives editors and tools that replace a file
// by renaming a new one over it, which is how certificates and CRLs are usually rotated.
import { type Stats, unwatchFile, watchFile } from "node:fs";

const POLL_MS = 1_000;
const DEBOUNCE_MS = 300;

export class ConfigWatcher {
  readonly #onChange: () => void;
  #files = new Set<string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(onChange: () => void) {
    this.#onChange = onChange;
  }

  readonly #listener = (current: Stats, previous: Stats) => {
    if (
      current.mtimeMs === previous.mtimeMs &&
      current.size === previous.size &&
      current.ino === previous.ino
    ) {
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = setTimeout(this.#onChange, DEBOUNCE_MS);
    this.#timer.unref();
  };

  /** Watches exactly these files from now on. */
  watch(files: readonly string[]): void {
    const next = new Set(files);
    for (const file of this.#files) if (!next.has(file)) unwatchFile(file, this.#listener);
    for (const file of next) {
      if (!this.#files.has(file)) watchFile(file, { interval: POLL_MS, persistent: false }, this.#listener);
    }
    this.#files = next;
  }

  close(): void {
    clearTimeout(this.#timer);
    for (const file of this.#files) unwatchFile(file, this.#listener);
    this.#files.clear();
  }
}
