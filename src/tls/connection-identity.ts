// Reads what a client presented on a TLS connection, once per socket. A resumed session carries only the
// leaf, so the intermediates of the last full handshake of the same leaf are remembered (bounded) and
// offered again; they are only candidate issuers, trust still comes from the trust stores alone.
import type { TLSSocket } from "node:tls";
import {
  type Certificate,
  CertificateParseError,
  chainFingerprint,
  parseCertificateCached,
} from "../identity/certificate.ts";
import { type ChainLimits, countOverLimits } from "../identity/limits.ts";
import { Lru } from "../identity/lru.ts";
import type { ConnectionIdentity } from "../identity/types.ts";
import { normalizeName } from "../routing/names.ts";
import type { SessionNames } from "./session-names.ts";

const MAX_REMEMBERED_CHAINS = 10_000;

export class PresentedChains {
  readonly #byLeaf = new Lru<readonly Certificate[]>(MAX_REMEMBERED_CHAINS);

  remember(leaf: Certificate, presented: readonly Certificate[]): void {
    if (presented.length > 0) this.#byLeaf.set(leaf.fingerprint, presented);
  }

  recall(leaf: Certificate): readonly Certificate[] {
    return this.#byLeaf.get(leaf.fingerprint) ?? [];
  }
}

/** DER of every certificate the peer chain holds, leaf first (Node's detailed peer certificate). */
function peerChainDer(socket: TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  const seen = new Set<string>();
  let cert = socket.getPeerCertificate(true);
  while (cert?.raw && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    out.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return out;
}

const kHooked = Symbol("portcullis.chainHooked");
const kChain = Symbol("portcullis.peerChain");
type ChainCarrier = TLSSocket & { [kHooked]?: true; [kChain]?: Buffer[] };

/**
 * Node 24.21's own 'secure' handler calls getPeerX509Certificate(), which (nodejs/node#65579, fixed in
 * 24.22) leaves only the leaf in the peer chain OpenSSL reports: the intermediates a device sent would be
 * lost whenever OpenSSL's check passed. So the chain is read in a 'secure' listener placed before Node's.
 * The server's 'keylog' event is the first moment the socket is reachable, for every connection, before
 * the handshake completes: call this from it. Harmless on runtimes without the bug.
 */
export function capturePeerChainEarly(socket: TLSSocket): void {
  const carrier = socket as ChainCarrier;
  if (carrier[kHooked]) return;
  carrier[kHooked] = true;
  socket.prependOnceListener("secure", () => {
    carrier[kChain] = sentChainDer(socket);
  });
}

/** More than any chainLimits.maxCertificates allows: the walk stops there, and the limit check refuses it. */
const MAX_WALKED = 65;

/**
 * DER of the certificates the client sent, leaf first, in the order sent: Node links a peer X509Certificate
 * to the next certificate of OpenSSL's peer chain. X509Certificate objects are lazy, so this costs about
 * half of the detailed legacy peer certificate (which computes three fingerprints and decodes every field
 * of each certificate). Only valid before Node's own 'secure' handler has consumed that chain (the bug
 * above), so only in capturePeerChainEarly; later, peerChainDer.
 */
function sentChainDer(socket: TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  let cert = socket.getPeerX509Certificate();
  while (cert !== undefined && out.length < MAX_WALKED) {
    const der = cert.raw;
    if (out.some((seen) => seen.equals(der))) break;
    out.push(der);
    cert = cert.issuerCertificate;
  }
  return out;
}

export function readConnectionIdentity(
  socket: TLSSocket,
  listener: string,
  chains: PresentedChains,
  sessionNames: SessionNames,
  limits: ChainLimits,
): ConnectionIdentity {
  const sni = sessionNames.resolve(socket, normalizeName(socket.servername));
  const resumed = socket.isSessionReused();
  const base = { sni, listener, resumed };
  // Never trust `authorized` alone: on some runtimes a resumed TLS 1.3 session without any certificate
  // reads authorized=true. The presence of a peer certificate is what says one was sent.
  // Taken once: what is needed is parsed (and cached) below, so the socket does not hold the DER while it
  // lives (an idle connection would keep ~3 KiB of buffers for nothing).
  const captured = (socket as ChainCarrier)[kChain];
  (socket as ChainCarrier)[kChain] = undefined;
  const leafX509 = socket.getPeerX509Certificate();
  if (!leafX509) return { ...base, leaf: undefined, presented: [], chainFingerprint: "" };
  const chainDer = captured ?? peerChainDer(socket);
  // Counted before anything is parsed: a client sending hundreds of certificates pays, the gateway not.
  const over = countOverLimits(
    Math.max(chainDer.length, 1),
    chainDer.reduce((n, der) => n + der.length, 0) || leafX509.raw.length,
    limits,
  );
  if (over) {
    const overLimits = { limit: over.limit, detail: over.detail };
    return { ...base, leaf: undefined, presented: [], chainFingerprint: "", overLimits };
  }
  let leaf: Certificate;
  let presented: Certificate[];
  try {
    // Parsed once per distinct certificate (cached by DER hash): a fleet shares a few intermediates.
    leaf = parseCertificateCached(leafX509.raw);
    presented = chainDer.slice(1).map((der) => parseCertificateCached(der));
  } catch (err) {
    const parseError = err instanceof CertificateParseError ? err.message : String(err);
    return { ...base, leaf: undefined, presented: [], chainFingerprint: "", parseError };
  }
  if (presented.length === 0) presented = [...chains.recall(leaf)];
  else chains.remember(leaf, presented);
  return { ...base, leaf, presented, chainFingerprint: chainFingerprint([leaf, ...presented]) };
}
