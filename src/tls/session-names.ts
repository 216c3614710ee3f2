// Which SNI a TLS session was made under. OpenSSL keeps no host name in a TLS 1.2 session it resumes
// (Node then reports servername === false), so the name of each full handshake is remembered under a
// hash of the session's master key, which a TLS 1.2 resumption reuses. A resumed session whose name is
// not remembered gets none: it can then only be served for IP-literal hosts (fail closed).
import { createHash } from "node:crypto";
import type { TLSSocket } from "node:tls";
import * as asn1js from "asn1js";
import { Lru } from "../identity/lru.ts";

const MAX_SESSIONS = 50_000;

/** SHA-256 of the master key in an OpenSSL SSL_SESSION (DER: version, sslVersion, cipher, id, masterKey, …). */
export function masterKeyHash(session: Buffer | undefined): string | undefined {
  if (!session) return undefined;
  const parsed = asn1js.fromBER(new Uint8Array(session));
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Sequence)) return undefined;
  const masterKey = parsed.result.valueBlock.value[4];
  if (!(masterKey instanceof asn1js.OctetString)) return undefined;
  return createHash("sha256").update(masterKey.valueBlock.valueHexView).digest("hex");
}

export class SessionNames {
  readonly #names = new Lru<{ sni: string; expiresAt: number }>(MAX_SESSIONS);
  readonly #ttlMs: number;

  constructor(ttlMs: number) {
    this.#ttlMs = ttlMs;
  }

  /** The SNI of this connection: as sent, or, on a resumed TLS 1.2 session, as its full handshake sent it. */
  resolve(socket: TLSSocket, sni: string | undefined, now = Date.now()): string | undefined {
    if (socket.getProtocol() !== "TLSv1.2") return sni;
    const key = masterKeyHash(socket.getSession());
    if (key === undefined) return socket.isSessionReused() ? undefined : sni;
    if (!socket.isSessionReused()) {
      if (sni !== undefined) this.#remember(key, sni, now);
      return sni;
    }
    const known = this.#names.get(key);
    return known && known.expiresAt > now ? known.sni : undefined;
  }

  #remember(key: string, sni: string, now: number): void {
    this.#names.set(key, { sni, expiresAt: now + this.#ttlMs });
  }
}
