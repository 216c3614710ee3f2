// The RevocationView over what is loaded: the current CRL snapshot and the OCSP cache, with the epoch that
// tells cached verdicts they are stale. Swapping data in is synchronous; fetching it is someone else's job.
import type { Certificate } from "../certificate.ts";
import { CrlSnapshot } from "./crl-snapshot.ts";
import { OcspCache, type OcspEntry } from "./ocsp-cache.ts";
import type { RevocationStatus, RevocationView } from "./types.ts";

export class RevocationState implements RevocationView {
  #crls: CrlSnapshot = CrlSnapshot.EMPTY;
  #epoch = 0;
  readonly ocsp: OcspCache;

  constructor(ocsp = new OcspCache()) {
    this.ocsp = ocsp;
  }

  get epoch(): number {
    return this.#epoch;
  }

  get crls(): CrlSnapshot {
    return this.#crls;
  }

  /** Installs a new snapshot; true (and a new epoch) when it differs from the current one. */
  swapCrls(next: CrlSnapshot): boolean {
    if (next === this.#crls) return false;
    this.#crls = next;
    this.#epoch++;
    return true;
  }

  /** Records an OCSP lookup; true (and a new epoch) when what the view reports changed. */
  recordOcsp(cert: Certificate, issuer: Certificate, entry: OcspEntry, now: Date): boolean {
    if (!this.ocsp.set(cert, issuer, entry, now)) return false;
    this.#epoch++;
    return true;
  }

  /** Time alone changed an answer (a CRL or an OCSP answer expired): verdicts must be re-made. */
  expire(now: Date): void {
    this.ocsp.prune(now);
    this.#epoch++;
  }

  /**
   * Revoked by either source wins; then good from a fresh CRL or a current OCSP answer; else unknown,
   * with what each source lacked.
   */
  status(cert: Certificate, issuer: Certificate, now: Date): RevocationStatus {
    const crl = this.#crls.status(cert, issuer, now);
    const ocsp = this.ocsp.status(cert, issuer, now);
    if (crl.status === "revoked") return crl;
    if (ocsp?.status === "revoked") return ocsp;
    if (crl.status === "good") return crl;
    if (ocsp?.status === "good") return ocsp;
    const details = [crl.detail, ocsp?.detail ?? "no OCSP answer is cached"];
    return { status: "unknown", detail: details.join("; ") };
  }
}
