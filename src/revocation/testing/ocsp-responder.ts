// Test helper: an OCSP responder over HTTP built with pkijs, answering each request as the test scripts it
// (including wrongly: bad signature, wrong CertID, unauthorised signer, slow).
import type * as pkijs from "pkijs";
import {
  buildOcspResponse,
  type ResponseSpec,
  requestedCertId,
} from "../../identity/revocation/testing/ocsp-builder.ts";
import { startServer, type TestServer } from "./http.ts";

export type Script = (
  certId: pkijs.CertID,
) => (ResponseSpec & { readonly delayMs?: number }) | { readonly httpStatus: number };

export interface PkijsResponder {
  readonly url: string;
  readonly server: TestServer;
  /** How many requests reached the responder. */
  requests(): number;
  close(): Promise<void>;
}

export async function startPkijsResponder(script: Script): Promise<PkijsResponder> {
  let count = 0;
  const server = await startServer(async (_req, body) => {
    count++;
    const certId = requestedCertId(body);
    const spec = script(certId);
    if ("httpStatus" in spec) return { status: spec.httpStatus, body: "nope", contentType: "text/plain" };
    const der = await buildOcspResponse(certId, spec);
    return { body: der, contentType: "application/ocsp-response", delayMs: spec.delayMs };
  });
  return { url: server.url("/ocsp"), server, requests: () => count, close: () => server.close() };
}
