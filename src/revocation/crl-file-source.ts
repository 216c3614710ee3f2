// One CRL file, watched: reloaded when it changes on disk; a bad new version keeps the last good CRLs.
import { type FSWatcher, watch } from "node:fs";
import { stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type { Certificate } from "../identity/certificate.ts";
import type { ParsedCrl } from "../identity/revocation/crl.ts";
import { type FileVersion, load } from "./crl-loader.ts";
import type { RevocationLogger } from "./logger.ts";

export interface CrlFileSourceOptions {
  readonly path: string;
  /** The CAs of the trust stores that list this file. */
  readonly cas: readonly Certificate[];
  readonly logger: RevocationLogger;
  readonly now: () => Date;
  /** Called with the CRLs of each good version of the file. */
  readonly onLoad: (crls: readonly ParsedCrl[]) => void;
  /** Safety-net stat polling, for file systems where fs.watch misses events (network mounts, some editors). */
  readonly pollIntervalMs: number;
}

/** Events come in bursts (truncate, write, rename): wait for the burst to end before reading. */
const DEBOUNCE_MS = 50;

const sameVersion = (a: FileVersion | undefined, b: FileVersion) =>
  a !== undefined && a.mtimeMs === b.mtimeMs && a.size === b.size && a.ino === b.ino;

export class CrlFileSource {
  readonly path: string;
  readonly #options: CrlFileSourceOptions;
  /** The version last read, good or bad: a bad version is reported once, not on every poll. */
  #seen: FileVersion | undefined;
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;
  #again = false;
  #closed = false;

  constructor(options: CrlFileSourceOptions) {
    this.path = options.path;
    this.#options = options;
  }

  /** The first load: throws RevocationSourceError naming the file when it is missing or broken. */
  async start(): Promise<void> {
    const { crls, warnings, version } = await load(this.path, this.#options.cas, this.#options.now());
    for (const warning of warnings) this.#options.logger.warn({ crlFile: this.path }, warning);
    this.#seen = version;
    this.#options.onLoad(crls);
    this.#watch();
  }

  #watch(): void {
    // The directory, not the file: a file replaced by rename (how most tools write atomically) is a new
    // inode that a watch on the old one would never report.
    try {
      this.#watcher = watch(dirname(this.path), { persistent: false }, (_event, name) => {
        if (name === null || name === basename(this.path)) this.#schedule();
      });
      this.#watcher.on("error", (err) => {
        this.#options.logger.warn(
          { crlFile: this.path, err: err.message },
          "CRL file watch failed; polling only",
        );
      });
    } catch (err) {
      this.#options.logger.warn({ crlFile: this.path, err: (err as Error).message }, "cannot watch CRL file");
    }
    this.#poll = setInterval(() => this.#schedule(), this.#options.pollIntervalMs);
    this.#poll.unref();
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.check(), DEBOUNCE_MS);
    this.#debounce.unref();
  }

  /** Reloads the file if its version changed; resolves once any reload in progress is done. */
  check(): Promise<void> {
    if (this.#checking) {
      this.#again = true;
      return this.#checking;
    }
    this.#checking = this.#check().finally(() => {
      this.#checking = undefined;
      if (this.#again && !this.#closed) {
        this.#again = false;
        void this.check();
      }
    });
    return this.#checking;
  }

  async #check(): Promise<void> {
    const { logger } = this.#options;
    let current: FileVersion;
    try {
      const s = await stat(this.path);
      current = { mtimeMs: s.mtimeMs, size: s.size, ino: s.ino };
    } catch (err) {
      if (this.#seen !== undefined) {
        logger.error(
          { crlFile: this.path, err: (err as Error).message },
          "CRL file unreadable; keeping the CRLs last loaded from it",
        );
      }
      this.#seen = undefined;
      return;
    }
    if (sameVersion(this.#seen, current) || this.#closed) return;
    try {
      const { crls, warnings, version } = await load(this.path, this.#options.cas, this.#options.now());
      if (this.#closed) return;
      this.#seen = version;
      for (const warning of warnings) logger.warn({ crlFile: this.path }, warning);
      logger.info({ crlFile: this.path, crls: crls.length }, "CRL file reloaded");
      this.#options.onLoad(crls);
    } catch (err) {
      this.#seen = current;
      logger.error(
        { crlFile: this.path, err: (err as Error).message },
        "CRL file rejected; keeping the CRLs last loaded from it",
      );
    }
  }

  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    clearInterval(this.#poll);
    clearTimeout(this.#debounce);
  }
}
