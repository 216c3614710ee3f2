// Keeps each enrollment profile's CRL file (`crlFile`) true: rewritten when a certificate the profile issued
// is revoked (on this node or another: a revocation is a device change every node hears), and before its
// nextUpdate runs out. A trust store lists the file under `revocation.crl.files` to check it; the registry
// binding of a revoked certificate is removed at the same time, so registry routes refuse it at once.
import { existsSync } from "node:fs";
import type { Logger } from "../gateway/log.ts";
import { writeFileAtomic } from "../pki/files.ts";
import type { EnrollmentStore } from "../registry/enrollment-types.ts";
import type { DeviceStore } from "../registry/types.ts";
import type { EstService } from "./est-service.ts";
import { issueCrl } from "./issuing-ca.ts";

/** Revoked certificates listed per page when a CRL is built. */
const PAGE = 10_000;
/** A burst of changes (an import, a revocation spree) rewrites the CRLs once. */
const DEBOUNCE_MS = 200;

/** Writes an empty CRL for every profile whose CRL file does not exist yet (before trust stores read it). */
export async function writeMissingCrls(est: EstService, now: Date): Promise<void> {
  for (const { config, ca } of est.issuers.values()) {
    if (config.crlFile === undefined || existsSync(config.crlFile)) continue;
    const pem = await issueCrl(ca, [], {
      now,
      nextUpdate: new Date(now.getTime() + config.crlValidityMs),
      number: now.getTime(),
    });
    writeFileAtomic(config.crlFile, pem);
  }
}

export class CrlPublisher {
  readonly #store: DeviceStore & EnrollmentStore;
  readonly #logger: Logger;
  #est: EstService | undefined;
  /** What was last published per profile: its revoked serials, and when it is due for a rewrite. */
  readonly #published = new Map<string, { serials: string; refreshAt: number }>();
  #timer: NodeJS.Timeout | undefined;
  #refresh: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  readonly #unsubscribe: () => void;
  #closed = false;

  constructor(store: DeviceStore & EnrollmentStore, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
    this.#unsubscribe = store.onChange((change) => {
      if (change.kind === "updated" || change.kind === "resync") this.#soon();
    });
  }

  /** Publishes with this runtime's profiles now (at start and after a reload). */
  use(est: EstService | undefined): Promise<void> {
    this.#est = est;
    this.#published.clear();
    return this.#publish();
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe();
    clearTimeout(this.#timer);
    clearTimeout(this.#refresh);
    return this.#running;
  }

  #soon(): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#publish();
    }, DEBOUNCE_MS);
    this.#timer.unref();
  }

  #publish(): Promise<void> {
    this.#running = this.#running.then(async () => {
      if (this.#closed || !this.#est) return;
      let soonest = Number.POSITIVE_INFINITY;
      for (const { config, ca } of this.#est.issuers.values()) {
        if (config.crlFile === undefined) continue;
        try {
          const now = new Date();
          // A CRL speaks for its issuer: every profile signing with this CA contributes its revocations.
          const sharing = [...this.#est.issuers.values()]
            .filter((p) => p.config.caCertificate.fingerprint === config.caCertificate.fingerprint)
            .map((p) => p.config.name);
          const revoked = (await Promise.all(sharing.map((name) => this.#revoked(name)))).flat();
          revoked.sort((a, b) => (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0));
          const serials = revoked.map((r) => r.serial).join(",");
          const last = this.#published.get(config.name);
          // Rewritten when the list changed, or when half the CRL's validity has passed.
          if (last === undefined || last.serials !== serials || last.refreshAt <= now.getTime()) {
            const pem = await issueCrl(ca, revoked, {
              now,
              nextUpdate: new Date(now.getTime() + config.crlValidityMs),
              number: now.getTime(),
            });
            writeFileAtomic(config.crlFile, pem);
            this.#published.set(config.name, {
              serials,
              refreshAt: now.getTime() + config.crlValidityMs / 2,
            });
            if (last !== undefined)
              this.#logger.info({ profile: config.name, revoked: revoked.length }, "CRL published");
          }
          soonest = Math.min(soonest, this.#published.get(config.name)?.refreshAt ?? soonest);
        } catch (err) {
          this.#logger.error({ err, profile: config.name }, "publishing the CRL failed");
          soonest = Math.min(soonest, Date.now() + 60_000);
        }
      }
      clearTimeout(this.#refresh);
      if (Number.isFinite(soonest)) {
        this.#refresh = setTimeout(
          () => void this.#publish(),
          Math.min(Math.max(1000, soonest - Date.now()), 2 ** 31 - 1),
        );
        this.#refresh.unref();
      }
    });
    return this.#running;
  }

  async #revoked(profile: string): Promise<{ serial: string; revokedAt: Date; reason: string }[]> {
    const out: { serial: string; revokedAt: Date; reason: string }[] = [];
    let after: string | undefined;
    do {
      const page = await this.#store.listIssuedCertificates({ profile, revoked: true, after, limit: PAGE });
      for (const c of page.certificates) {
        if (c.revokedAt)
          out.push({ serial: c.serial, revokedAt: c.revokedAt, reason: c.revocationReason ?? "unspecified" });
      }
      after = page.next;
    } while (after !== undefined);
    return out;
  }
}
