// The gateway's revocation service: loads and watches CRL files, fetches CRL URLs and Distribution Points,
// asks OCSP responders, and exposes the result as one RevocationView whose changes it announces.
import { Agent } from "undici";
import type { Certificate } from "../identity/certificate.ts";
import { verifyChain } from "../identity/path-validation.ts";
import { revocationInfo } from "../identity/revocation/cert-info.ts";
import { revocationTargets } from "../identity/revocation/check.ts";
import type { ParsedCrl } from "../identity/revocation/crl.ts";
import type { OcspEntry } from "../identity/revocation/ocsp-cache.ts";
import { RevocationState } from "../identity/revocation/revocation-state.ts";
import type { RevocationSettings, RevocationView } from "../identity/revocation/types.ts";
import type { TrustStore } from "../identity/types.ts";
import { CrlFileSource } from "./crl-file-source.ts";
import { CrlUrlSource } from "./crl-url-source.ts";
import { RevocationConfigError } from "./errors.ts";
import type { RevocationLogger } from "./logger.ts";
import { OcspClient } from "./ocsp-client.ts";

export interface RevocationServiceDeps {
  readonly logger: RevocationLogger;
  readonly now?: () => Date;
  /** Stat polling of CRL files, behind fs.watch. Default 30 s. */
  readonly filePollIntervalMs?: number;
  /** How long a failed OCSP lookup is remembered. Default 30 s. */
  readonly ocspFailureTtlMs?: number;
  /** Most CRL Distribution Point URLs followed (they come from CA-signed certificates only). Default 1000. */
  readonly maxDistributionPoints?: number;
}

export type RevocationListener = (epoch: number) => void;

const MAX_TIMER_MS = 2 ** 31 - 1;

/** CAs of the stores that use revocation, by the file or URL they list. */
function sourcesOf(stores: readonly TrustStore[]) {
  const files = new Map<string, { cas: Certificate[]; stores: string[] }>();
  const urls = new Map<string, { cas: Certificate[]; crl: RevocationSettings["crl"] }>();
  for (const store of stores) {
    if (store.revocation.mode === "off") continue;
    const cas = [...store.anchors, ...store.intermediates];
    for (const path of store.revocation.crl.files) {
      const entry = files.get(path) ?? { cas: [], stores: [] };
      entry.cas.push(...cas);
      entry.stores.push(store.name);
      files.set(path, entry);
    }
    for (const url of store.revocation.crl.urls) {
      const entry = urls.get(url) ?? { cas: [], crl: store.revocation.crl };
      entry.cas.push(...cas);
      urls.set(url, entry);
    }
  }
  return { files, urls };
}

export class RevocationService {
  readonly #state = new RevocationState();
  readonly #logger: RevocationLogger;
  readonly #now: () => Date;
  readonly #deps: RevocationServiceDeps;
  readonly #agent = new Agent({ connections: 4 });
  readonly #ocsp: OcspClient;
  readonly #files: CrlFileSource[] = [];
  readonly #urls = new Map<string, CrlUrlSource>();
  readonly #listeners = new Set<RevocationListener>();
  /** The CAs of every store, whose CRL signatures are checked as soon as a snapshot is installed. */
  readonly #knownCas = new Map<string, Certificate>();
  #expiryTimer: NodeJS.Timeout | undefined;
  #expiryAt: number | undefined;
  #closed = false;

  private constructor(deps: RevocationServiceDeps) {
    this.#deps = deps;
    this.#logger = deps.logger;
    this.#now = deps.now ?? (() => new Date());
    this.#ocsp = new OcspClient({
      logger: deps.logger,
      failureTtlMs: deps.ocspFailureTtlMs ?? 30_000,
      dispatcher: this.#agent,
    });
  }

  /**
   * Loads every CRL file of the stores that check revocation and fetches their CRL URLs. A missing or
   * broken CRL file throws RevocationConfigError naming the store and the file: the gateway must not start
   * with less revocation data than configured. An unreachable URL only logs: it is retried.
   */
  static async create(
    stores: readonly TrustStore[],
    deps: RevocationServiceDeps,
  ): Promise<RevocationService> {
    const service = new RevocationService(deps);
    for (const store of stores) {
      for (const ca of [...store.anchors, ...store.intermediates]) service.#knownCas.set(ca.fingerprint, ca);
    }
    const { files, urls } = sourcesOf(stores);
    try {
      for (const [path, { cas, stores: names }] of files) {
        const source = new CrlFileSource({
          path,
          cas,
          logger: deps.logger,
          now: service.#now,
          pollIntervalMs: deps.filePollIntervalMs ?? 30_000,
          onLoad: (crls) => service.#install(`file:${path}`, crls),
        });
        service.#files.push(source);
        await source.start().catch((err: Error) => {
          const which = names.map((n) => `"${n}"`).join(", ");
          throw new RevocationConfigError(`trust store ${which}: ${err.message}`);
        });
      }
    } catch (err) {
      await service.close();
      throw err;
    }
    for (const [url, { cas, crl }] of urls) service.#urlSource(url, crl, cas);
    await Promise.allSettled([...service.#urls.values()].map((s) => s.refresh()));
    return service;
  }

  /** The view the identity engine reads; the same object for the service's lifetime. */
  view(): RevocationView {
    return this.#state;
  }

  /** Calls `listener` with the new epoch whenever any revocation answer may have changed. */
  onChange(listener: RevocationListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Makes sure the view can answer for this validated path under `store`'s settings: fetches the CRL
   * Distribution Points of certificates without a fresh CRL and asks OCSP when enabled, each bounded by its
   * timeout. Resolves when done or given up; never rejects. Call it only for paths that validated: the
   * URLs it follows come from the certificates.
   */
  async prepare(
    leaf: Certificate,
    path: readonly Certificate[],
    store: TrustStore,
    now: Date,
  ): Promise<void> {
    const settings = store.revocation;
    if (settings.mode === "off" || this.#closed) return;
    try {
      const tasks: Promise<void>[] = [];
      for (const [cert, issuer] of revocationTargets(leaf, path, settings.scope)) {
        if (settings.crl.distributionPoints && !this.#state.crls.isFresh(cert, issuer, now)) {
          tasks.push(this.#fetchDistributionPoints(cert, issuer, settings.crl, now));
        }
        if (settings.ocsp.enabled && this.#state.ocsp.get(cert, issuer, now) === undefined) {
          tasks.push(this.#askOcsp(cert, issuer, settings.ocsp, now));
        }
      }
      await Promise.allSettled(tasks);
    } catch (err) {
      this.#logger.error({ err: (err as Error).message, store: store.name }, "revocation prepare failed");
    }
  }

  /**
   * prepare() for every store of `stores` under which the presented chain validates, for callers that
   * have not built the path yet (decide() builds it again; signature checks are memoised).
   */
  async prepareChain(
    leaf: Certificate,
    presented: readonly Certificate[],
    stores: readonly TrustStore[],
    now: Date,
  ): Promise<void> {
    const tasks: Promise<void>[] = [];
    for (const store of stores) {
      if (store.revocation.mode === "off") continue;
      const result = verifyChain(leaf, presented, store, now);
      if (result.ok) tasks.push(this.prepare(leaf, result.path, store, now));
    }
    await Promise.all(tasks);
  }

  async #fetchDistributionPoints(
    cert: Certificate,
    issuer: Certificate,
    crl: RevocationSettings["crl"],
    now: Date,
  ): Promise<void> {
    for (const url of revocationInfo(cert).crlUrls) {
      const source = this.#urlSource(url, crl, [issuer]);
      if (source === undefined) return;
      source.addIssuer(issuer);
      await source.refresh();
      if (this.#state.crls.isFresh(cert, issuer, now)) return;
    }
  }

  async #askOcsp(cert: Certificate, issuer: Certificate, ocsp: RevocationSettings["ocsp"], now: Date) {
    const entry = await this.#ocsp.lookup(cert, issuer, ocsp, now);
    if (this.#closed) return;
    if (this.#state.recordOcsp(cert, issuer, entry, now)) this.#changed();
    this.#armExpiry(entry);
  }

  #urlSource(
    url: string,
    crl: RevocationSettings["crl"],
    cas: readonly Certificate[],
  ): CrlUrlSource | undefined {
    let source = this.#urls.get(url);
    if (source !== undefined) {
      for (const ca of cas) source.addIssuer(ca);
      return source;
    }
    if (this.#urls.size >= (this.#deps.maxDistributionPoints ?? 1_000)) {
      this.#logger.warn({ crlUrl: url }, "too many CRL URLs; this one is not fetched");
      return undefined;
    }
    source = new CrlUrlSource(
      {
        url,
        timeoutMs: crl.timeoutMs,
        maxBytes: crl.maxBytes,
        refreshIntervalMs: crl.refreshIntervalMs,
        logger: this.#logger,
        now: this.#now,
        dispatcher: this.#agent,
        onLoad: (crls) => this.#install(`url:${url}`, crls),
      },
      cas,
    );
    this.#urls.set(url, source);
    return source;
  }

  #install(source: string, crls: readonly ParsedCrl[]): void {
    if (this.#closed) return;
    const next = this.#state.crls.with(source, crls);
    next.prime(this.#knownCas.values());
    if (this.#state.swapCrls(next)) this.#changed();
    this.#armExpiry();
  }

  #changed(): void {
    const epoch = this.#state.epoch;
    for (const listener of this.#listeners) {
      try {
        listener(epoch);
      } catch (err) {
        this.#logger.error({ err: (err as Error).message }, "revocation change listener failed");
      }
    }
  }

  /**
   * One timer, at the next moment when time alone changes an answer (a CRL's nextUpdate, an OCSP answer's
   * expiry): verdicts cached as "good" must then be re-made.
   */
  #armExpiry(entry?: OcspEntry): void {
    if (this.#closed) return;
    const now = this.#now();
    let at: number | undefined;
    if (entry !== undefined) {
      if (entry.kind !== "answer") return;
      at = entry.expiresAt.getTime();
      if (this.#expiryAt !== undefined && this.#expiryAt <= at) return;
    } else {
      const times = [this.#state.crls.nextExpiry(now), this.#state.ocsp.nextExpiry(now)];
      const next = times.filter((t) => t !== undefined).map((t) => t.getTime());
      at = next.length > 0 ? Math.min(...next) : undefined;
    }
    clearTimeout(this.#expiryTimer);
    this.#expiryAt = at;
    if (at === undefined) return;
    const delay = Math.min(Math.max(at - now.getTime(), 0) + 1, MAX_TIMER_MS);
    this.#expiryTimer = setTimeout(() => {
      this.#expiryAt = undefined;
      this.#state.expire(this.#now());
      this.#changed();
      this.#armExpiry();
    }, delay);
    this.#expiryTimer.unref();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#expiryTimer);
    for (const source of this.#files) source.close();
    for (const source of this.#urls.values()) source.close();
    this.#listeners.clear();
    await this.#ocsp.close();
    // destroy, not close: a fetch still running is of no use to anyone any more.
    await this.#agent.destroy();
  }
}
