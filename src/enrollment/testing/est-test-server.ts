// A tiny EST server for the client's tests: HTTPS with a certificate from its own CA, every request recorded
// (headers, body, the client certificate's CN), answered by whatever handler the test sets. It also signs
// CSRs with that CA, so a test can answer "issued" with a real certificate for the requested key.
import type { IncomingHttpHeaders } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { x509 } from "../../identity/x509.ts";
import {
  createRootCa,
  type Issued,
  issueDeviceCertificate,
  issueServerCertificate,
  randomSerialNumber,
} from "../../pki/issue.ts";
import { signingAlgorithm } from "../../pki/keys.ts";
import { certsOnly, fromBase64Body, toBase64Body } from "../pkcs7.ts";

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The CN of the client certificate, when one was sent and chains to the server's CA. */
  readonly clientCn: string | undefined;
}

export interface Reply {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: string | Uint8Array;
}

export type Handler = (req: SeenRequest) => Reply | Promise<Reply>;

export interface EstTestServer {
  readonly url: URL;
  /** The CA that issued the server's certificate, signs CSRs and is trusted for client certificates. */
  readonly ca: Issued;
  readonly requests: SeenRequest[];
  /** Answers every request; the default answers /cacerts with the CA and anything else 500. */
  handler: Handler;
  close(): Promise<void>;
}

/** A certs-only answer, base64, with the EST content type. */
export function certsOnlyReply(ders: readonly Uint8Array[]): Reply {
  return {
    status: 200,
    headers: { "content-type": "application/pkcs7-mime; smime-type=certs-only" },
    body: toBase64Body(certsOnly(ders)),
  };
}

/** A CSR signed by `ca`: the CSR's subject, public key and subjectAltName; the certificate's DER. */
export async function issueFromCsr(ca: Issued, csrBody: string): Promise<Uint8Array> {
  const csr = new x509.Pkcs10CertificateRequest(fromBase64Body(csrBody));
  if (!(await csr.verify())) throw new Error("the CSR's signature does not verify");
  const san = csr.getExtension("2.5.29.17"); // subjectAltName
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: csr.subjectName,
    issuer: ca.cert.subjectName,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 86_400_000),
    publicKey: csr.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: signingAlgorithm(ca.algorithm),
    extensions: san ? [san] : [],
  });
  return new Uint8Array(cert.rawData);
}

/** A device certificate from the server's CA, to authenticate a reenroll with. */
export function deviceCertificate(server: EstTestServer, deviceId: string): Promise<Issued> {
  return issueDeviceCertificate(server.ca, { deviceId });
}

export async function startEstTestServer(): Promise<EstTestServer> {
  const ca = await createRootCa({ subject: "O=Portcullis tests, CN=EST Test CA" });
  const tls = await issueServerCertificate(ca, { names: ["localhost", "127.0.0.1"] });
  const caDer = new Uint8Array(ca.cert.rawData);
  const state: EstTestServer = {
    url: new URL("https://127.0.0.1"),
    ca,
    requests: [],
    handler: (req) =>
      req.path.endsWith("/cacerts")
        ? certsOnlyReply([caDer])
        : { status: 500, headers: { "content-type": "text/plain" }, body: "no handler" },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  const server: Server = createServer(
    { cert: tls.certPem, key: tls.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: false },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", async () => {
        const socket = req.socket as TLSSocket;
        const peer = socket.authorized ? socket.getPeerCertificate() : undefined;
        const seen: SeenRequest = {
          method: req.method ?? "",
          path: req.url ?? "",
          headers: req.headers,
          body: Buffer.concat(chunks).toString("latin1"),
          clientCn: peer?.subject?.CN as string | undefined,
        };
        state.requests.push(seen);
        let reply: Reply;
        try {
          reply = await state.handler(seen);
        } catch (err) {
          reply = { status: 500, headers: { "content-type": "text/plain" }, body: `test handler: ${err}` };
        }
        res.writeHead(reply.status, reply.headers);
        res.end(reply.body);
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url.port = String((server.address() as AddressInfo).port);
  return state;
}
