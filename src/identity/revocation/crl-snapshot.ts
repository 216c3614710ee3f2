// An immutable set of loaded CRLs, indexed by issuer: a reload builds a new snapshot and swaps it in whole,
// so a lookup never sees half of a change.
import type { Certificate } from "../certificate.ts";
import { certificateLabel } from "../describe.ts";
import { revocationInfo } from "./cert-info.ts";
import { crlSignatureProblem, type ParsedCrl } from "./crl.ts";
import { canonicalSerial } from "./der.ts";
import type { RevocationStatus } from "./types.ts";

/** A CRL issued a little "in the future" by a CA whose clock runs ahead is still usable. */
const CLOCK_SKEW_MS = 5 * 60_000;
/** Bound on memoised issuers: status() is only asked about issuers of validated paths, but stay bounded. */
const MEMO_LIMIT = 1_000;

interface IssuerCrls {
  /** CRLs that verify with the issuer's key, newest first. */
  readonly verified: readonly ParsedCrl[];
  /** Why CRLs carrying the issuer's name were rejected, for the "unknown" detail. */
  readonly problems: readonly string[];
}

/** Newer first: by cRLNumber when both have one (the CA's own ordering), else by thisUpdate. */
function newestFirst(a: ParsedCrl, b: ParsedCrl): number {
  if (a.crlNumber !== undefined && b.crlNumber !== undefined && a.crlNumber !== b.crlNumber) {
    return a.crlNumber > b.crlNumber ? -1 : 1;
  }
  return b.thisUpdate.getTime() - a.thisUpdate.getTime();
}

function covers(crl: ParsedCrl, cert: Certificate): boolean {
  if (crl.only === "users" && cert.isCA) return false;
  if (crl.only === "cas" && !cert.isCA) return false;
  if (crl.distributionPoints !== undefined && crl.distributionPoints.length > 0) {
    const urls = revocationInfo(cert).crlUrls;
    return crl.distributionPoints.some((dp) => urls.includes(dp));
  }
  return true;
}

export class CrlSnapshot {
  static readonly EMPTY = new CrlSnapshot(new Map());

  /** Source id (a file path or URL) → the CRLs it holds. */
  readonly sources: ReadonlyMap<string, readonly ParsedCrl[]>;
  readonly #byIssuerName = new Map<string, ParsedCrl[]>();
  // Signature checks are memoised per issuer certificate: the CRLs of a snapshot never change.
  readonly #memo = new Map<string, IssuerCrls>();

  private constructor(sources: ReadonlyMap<string, readonly ParsedCrl[]>) {
    this.sources = sources;
    for (const crls of sources.values()) {
      for (const crl of crls) {
        const key = crl.issuerDer.toString("hex");
        const list = this.#byIssuerName.get(key);
        if (list) list.push(crl);
        else this.#byIssuerName.set(key, [crl]);
      }
    }
  }

  /** A snapshot with `source` holding `crls` (none: removed); this very snapshot when nothing changes. */
  with(source: string, crls: readonly ParsedCrl[]): CrlSnapshot {
    const current = this.sources.get(source);
    const same =
      current !== undefined &&
      current.length === crls.length &&
      current.every((c, i) => c.sha256 === crls[i]?.sha256);
    if (same || (current === undefined && crls.length === 0)) return this;
    const next = new Map(this.sources);
    if (crls.length === 0) next.delete(source);
    else next.set(source, crls);
    return new CrlSnapshot(next);
  }

  #issuerCrls(issuer: Certificate): IssuerCrls {
    let entry = this.#memo.get(issuer.fingerprint);
    if (entry !== undefined) return entry;
    const verified: ParsedCrl[] = [];
    const problems: string[] = [];
    for (const crl of this.#byIssuerName.get(issuer.subjectDer.toString("hex")) ?? []) {
      const problem = crlSignatureProblem(crl, issuer);
      if (problem === undefined) verified.push(crl);
      else problems.push(`CRL from ${crl.source} is ignored: ${problem}`);
    }
    entry = { verified: verified.sort(newestFirst), problems };
    if (this.#memo.size >= MEMO_LIMIT) this.#memo.clear();
    this.#memo.set(issuer.fingerprint, entry);
    return entry;
  }

  /**
   * Checks the CRLs of these issuers now rather than on the first status() call: the signature over a large
   * CRL is costly, better paid when it is loaded than by the request that first asks.
   */
  prime(issuers: Iterable<Certificate>): void {
    for (const issuer of issuers) this.#issuerCrls(issuer);
  }

  /** The newest CRL of `issuer` that speaks about `cert` and is already issued at `now`. */
  current(cert: Certificate, issuer: Certificate, now: Date): ParsedCrl | undefined {
    const limit = now.getTime() + CLOCK_SKEW_MS;
    return this.#issuerCrls(issuer).verified.find((c) => c.thisUpdate.getTime() <= limit && covers(c, cert));
  }

  /** Whether a CRL of `issuer` covering `cert` is loaded and not past its nextUpdate. */
  isFresh(cert: Certificate, issuer: Certificate, now: Date): boolean {
    const crl = this.current(cert, issuer, now);
    return crl !== undefined && (crl.nextUpdate === undefined || crl.nextUpdate.getTime() >= now.getTime());
  }

  /**
   * What the loaded CRLs say about `cert`: revoked even on a stale or unusable CRL (revocation is final),
   * good only on a fresh, usable one.
   */
  status(cert: Certificate, issuer: Certificate, now: Date): RevocationStatus {
    const crl = this.current(cert, issuer, now);
    if (crl === undefined) {
      const { problems } = this.#issuerCrls(issuer);
      const why = problems.length > 0 ? `: ${problems.join("; ")}` : "";
      return { status: "unknown", detail: `no CRL of issuer ${certificateLabel(issuer)} is loaded${why}` };
    }
    const entry = crl.revoked.get(canonicalSerial(cert.serialNumber));
    if (entry !== undefined) {
      return {
        status: "revoked",
        source: "crl",
        revokedAt: entry.revokedAt,
        ...(entry.reason ? { reason: entry.reason } : {}),
      };
    }
    if (crl.unusable !== undefined) {
      return {
        status: "unknown",
        detail: `the CRL of issuer ${certificateLabel(issuer)} (${crl.source}) cannot vouch for a certificate: ${crl.unusable}`,
      };
    }
    if (crl.nextUpdate !== undefined && crl.nextUpdate.getTime() < now.getTime()) {
      return {
        status: "unknown",
        detail: `the CRL of issuer ${certificateLabel(issuer)} (${crl.source}) is stale: its nextUpdate ${crl.nextUpdate.toISOString()} has passed`,
      };
    }
    return { status: "good", source: "crl" };
  }

  /** The earliest nextUpdate after `now` among the loaded CRLs: when a "good" may turn into "stale". */
  nextExpiry(now: Date): Date | undefined {
    let earliest: Date | undefined;
    for (const crls of this.sources.values()) {
      for (const { nextUpdate } of crls) {
        if (nextUpdate === undefined || nextUpdate.getTime() <= now.getTime()) continue;
        if (earliest === undefined || nextUpdate < earliest) earliest = nextUpdate;
      }
    }
    return earliest;
  }
}
