// Server-side TLS settings of a listener and its SNI contexts: one secure context per server certificate,
// chosen by the normalised SNI name (exact, then one-label wildcard, else the default certificate).
import { constants, createHash, createHmac, randomBytes } from "node:crypto";
import { createSecureContext, type SecureContext, type SecureContextOptions } from "node:tls";
import type { CompiledListener, ServerCertificate } from "../config/compile.ts";
import { matchesPattern, normalizeName } from "../routing/names.ts";

/** TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 suites are all AEAD. */
export const AEAD_CIPHERS = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

/**
 * Whether the handshake lists acceptable CA names and (in handshake mode) lets OpenSSL verify against
 * them. Node sends every `ca` certificate's name and offers no way to verify without sending them, so
 * `sendCaNames: false` leaves `ca` out and the identity engine alone decides, right after the handshake.
 */
export function caPemFor(listener: CompiledListener): string | undefined {
  if (listener.clientAuth === "off" || !listener.sendCaNames) return undefined;
  return listener.trustStores.map((s) => s.pem).join("\n");
}

/** Lifetime of a TLS session (ticket), in seconds. */
export const SESSION_TIMEOUT_S = 300;

/**
 * Sessions are bound to the listener and its trust: a change of either starts afresh. (OpenSSL decides
 * on resumption before the SNI context switch, so a per-name context would not bind a session to its
 * name; the SNI binding of resumed sessions is enforced by the gateway itself, see session-names.ts.)
 */
export function sessionIdContext(listener: CompiledListener): string {
  const hash = createHash("sha256").update(listener.name).update(listener.clientAuth);
  for (const store of listener.trustStores) hash.update(store.pem);
  return hash.digest("hex").slice(0, 32);
}

export function baseContextOptions(
  listener: CompiledListener,
  cert: ServerCertificate,
): SecureContextOptions {
  return {
    key: cert.keyPem,
    cert: cert.certPem,
    ca: caPemFor(listener),
    minVersion: "TLSv1.2",
    ciphers: AEAD_CIPHERS,
    honorCipherOrder: true,
    // Client-initiated renegotiation is refused outright; nothing here ever depends on it.
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION | constants.SSL_OP_CIPHER_SERVER_PREFERENCE,
    sessionIdContext: sessionIdContext(listener),
  };
}

/** Set by the cluster primary for its workers: one secret from which every worker derives the same keys. */
export const TICKET_SECRET_ENV = "PORTCULLIS_TICKET_SECRET";
const PROCESS_SECRET = randomBytes(32);

/**
 * TLS ticket keys (48 bytes) of a listener, derived from a secret and the listener's session id context:
 * workers of one gateway share them (a session resumes on any worker), and a change of the listener's
 * trust changes its context and so rotates them. Without a shared secret, each process has its own.
 */
export function ticketKeysFor(listener: CompiledListener): Buffer {
  const shared = process.env[TICKET_SECRET_ENV];
  const secret = shared && /^[0-9a-f]{64}$/.test(shared) ? Buffer.from(shared, "hex") : PROCESS_SECRET;
  const context = sessionIdContext(listener);
  const part = (label: string) => createHmac("sha256", secret).update(label).update(context).digest();
  return Buffer.concat([part("portcullis ticket keys 1"), part("portcullis ticket keys 2")]).subarray(0, 48);
}

export interface SniSelector {
  readonly defaultOptions: SecureContextOptions;
  readonly ticketKeys: Buffer;
  SNICallback(servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void;
}

export function buildSniSelector(listener: CompiledListener): SniSelector {
  const [first] = listener.certificates;
  if (!first) throw new Error(`listener "${listener.name}" has no server certificate`);
  const entries = listener.certificates.map((cert) => ({
    names: cert.names,
    context: createSecureContext(baseContextOptions(listener, cert)),
  }));
  const exact = new Map<string, SecureContext>();
  const wildcards: [string, SecureContext][] = [];
  for (const { names, context } of entries) {
    for (const name of names) {
      if (!name.startsWith("*.")) {
        if (!exact.has(name)) exact.set(name, context);
      } else if (!wildcards.some(([p]) => p === name)) {
        wildcards.push([name, context]);
      }
    }
  }
  const fallback = entries[0]?.context;
  return {
    defaultOptions: baseContextOptions(listener, first),
    ticketKeys: ticketKeysFor(listener),
    SNICallback(servername, cb) {
      const name = normalizeName(servername);
      const context =
        name === undefined
          ? fallback
          : (exact.get(name) ?? wildcards.find(([p]) => matchesPattern(name, p))?.[1] ?? fallback);
      cb(null, context);
    },
  };
}
