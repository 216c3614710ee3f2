// Asking an OCSP responder about one certificate: POST application/ocsp-request (through a proxy when
// configured), verify the answer, and turn any failure into a short-lived cache entry. Concurrent lookups of
// the same certificate share one exchange.
import { type Dispatcher, ProxyAgent } from "undici";
import type { Certificate } from "../identity/certificate.ts";
import { certificateLabel } from "../identity/describe.ts";
import { revocationInfo } from "../identity/revocation/cert-info.ts";
import { canonicalSerial } from "../identity/revocation/der.ts";
import type { OcspEntry } from "../identity/revocation/ocsp-cache.ts";
import { buildOcspRequest } from "../identity/revocation/ocsp-request.ts";
import { verifyOcspResponse } from "../identity/revocation/ocsp-response.ts";
import type { RevocationSettings } from "../identity/revocation/types.ts";
import { RevocationSourceError } from "./errors.ts";
import { fetchBytes } from "./http-fetch.ts";
import type { RevocationLogger } from "./logger.ts";

/** OCSP responses are small; anything larger is not one. */
const MAX_RESPONSE_BYTES = 256 * 1024;

export interface OcspClientOptions {
  readonly logger: RevocationLogger;
  /** How long a failed lookup is remembered before the responder is asked again. */
  readonly failureTtlMs: number;
  /** Dispatcher for direct (unproxied) requests. */
  readonly dispatcher?: Dispatcher;
}

export class OcspClient {
  readonly #options: OcspClientOptions;
  readonly #inFlight = new Map<string, Promise<OcspEntry>>();
  readonly #proxies = new Map<string, ProxyAgent>();

  constructor(options: OcspClientOptions) {
    this.#options = options;
  }

  /** The responder for `cert`: the configured one, else the first http(s) OCSP URL of its AIA. */
  static responderFor(cert: Certificate, settings: RevocationSettings["ocsp"]): string | undefined {
    return settings.responder ?? revocationInfo(cert).ocspUrls[0];
  }

  /** The cache entry for `cert` at `now`: a verified answer, or the failure. Never rejects. */
  lookup(
    cert: Certificate,
    issuer: Certificate,
    settings: RevocationSettings["ocsp"],
    now: Date,
  ): Promise<OcspEntry> {
    const responder = OcspClient.responderFor(cert, settings);
    const key = `${responder}|${issuer.fingerprint}|${canonicalSerial(cert.serialNumber)}`;
    let pending = this.#inFlight.get(key);
    if (pending === undefined) {
      pending = this.#lookup(cert, issuer, responder, settings, now).finally(() =>
        this.#inFlight.delete(key),
      );
      this.#inFlight.set(key, pending);
    }
    return pending;
  }

  async #lookup(
    cert: Certificate,
    issuer: Certificate,
    responder: string | undefined,
    settings: RevocationSettings["ocsp"],
    now: Date,
  ): Promise<OcspEntry> {
    const failure = (detail: string): OcspEntry => {
      this.#options.logger.warn(
        {
          ocspResponder: responder,
          certificate: cert.subject,
          serial: cert.serialNumber,
          issuer: issuer.subject,
        },
        `OCSP lookup failed: ${detail}`,
      );
      return { kind: "failure", detail, expiresAt: new Date(now.getTime() + this.#options.failureTtlMs) };
    };
    if (responder === undefined) {
      return failure(
        `no responder for ${certificateLabel(cert)}: none configured and no OCSP URL in its AIA`,
      );
    }
    try {
      const body = await fetchBytes(responder, {
        method: "POST",
        body: buildOcspRequest(cert, issuer),
        headers: { "content-type": "application/ocsp-request", accept: "application/ocsp-response" },
        timeoutMs: settings.timeoutMs,
        maxBytes: MAX_RESPONSE_BYTES,
        dispatcher: settings.proxy ? this.#proxy(settings.proxy) : this.#options.dispatcher,
      });
      const answer = verifyOcspResponse(body, cert, issuer, now, settings.maxAgeMs);
      const expiresAt = answer.nextUpdate ?? new Date(answer.thisUpdate.getTime() + settings.maxAgeMs);
      if (answer.status === "revoked") {
        this.#options.logger.info(
          { ocspResponder: responder, certificate: cert.subject, serial: cert.serialNumber },
          "OCSP: certificate revoked",
        );
      }
      return { kind: "answer", answer, expiresAt };
    } catch (err) {
      const message = (err as Error).message;
      return failure(err instanceof RevocationSourceError ? message : `${responder}: ${message}`);
    }
  }

  #proxy(url: string): ProxyAgent {
    let agent = this.#proxies.get(url);
    if (agent === undefined) {
      agent = new ProxyAgent(url);
      this.#proxies.set(url, agent);
    }
    return agent;
  }

  async close(): Promise<void> {
    const agents = [...this.#proxies.values()];
    this.#proxies.clear();
    await Promise.allSettled(agents.map((a) => a.destroy()));
  }
}
