// What every listener's TLS server does alike, HTTP or MQTT: bind, and take a reloaded listener's
// certificates, trust and client-auth mode for new handshakes.
import type { AddressInfo } from "node:net";
import type { Server } from "node:tls";
import type { CompiledListener } from "../config/compile.ts";
import type { SniSelector } from "./secure-contexts.ts";

export function listenOn(server: Server, listener: CompiledListener): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(listener.port, listener.host, () => {
      server.off("error", reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * New server certificates, trust stores and client-auth mode for new handshakes; open connections keep
 * going. When trust changes, ticket keys are rotated so that no session made under the old trust resumes.
 */
export function applyListenerUpdate(
  server: Server,
  current: CompiledListener,
  next: CompiledListener,
  sni: SniSelector,
): void {
  const trustChanged =
    next.clientAuth !== current.clientAuth ||
    next.trustStores.map((s) => s.pem).join() !== current.trustStores.map((s) => s.pem).join();
  server.setSecureContext(sni.defaultOptions);
  if (trustChanged) server.setTicketKeys(sni.ticketKeys);
  // Server-level in Node (not per context); new connections honour the changed values.
  const flags = server as unknown as { requestCert: boolean; rejectUnauthorized: boolean };
  flags.requestCert = next.clientAuth !== "off";
  flags.rejectUnauthorized = next.clientAuth === "handshake" && next.sendCaNames;
}
