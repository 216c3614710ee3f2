// Test helper: Debian's `openssl ocsp` as an independent OCSP responder, fed an index.txt in `openssl ca`
// format that the test writes. The caller must close() it (in `after`) so no openssl process outlives the test.
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Minted } from "../../identity/testing/mint.ts";
import { exportPrivateKeyPem } from "../../pki/keys.ts";
import { freePort } from "./http.ts";

export interface IndexEntry {
  readonly cert: Minted;
  readonly revokedAt?: Date;
  readonly reason?: string;
}

export interface OpensslResponder {
  readonly url: string;
  close(): Promise<void>;
}

/** YYMMDDHHMMSSZ, as openssl's index.txt wants its dates. */
const indexDate = (d: Date) => `${d.toISOString().slice(2, 19).replace(/[-:T]/g, "")}Z`;

function indexLine({ cert, revokedAt, reason }: IndexEntry): string {
  const status = revokedAt ? "R" : "V";
  const revocation = revokedAt ? `${indexDate(revokedAt)}${reason ? `,${reason}` : ""}` : "";
  const subject = `/CN=${cert.cert.commonName ?? ""}`;
  return [
    status,
    indexDate(cert.cert.notAfter),
    revocation,
    cert.cert.serialNumber.toUpperCase(),
    "unknown",
    subject,
  ].join("\t");
}

/**
 * Resolves once openssl says it listens. Not by probing the port: the responder serves one connection at a
 * time and would sit on an idle probe connection.
 */
function waitForAccept(child: ChildProcess, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`openssl ocsp did not start: ${output}`)), timeoutMs);
    const onData = (d: Buffer) => {
      output += d.toString();
      if (/waiting for OCSP client connections|ACCEPT/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`openssl ocsp exited with ${code}: ${output}`));
    });
  });
}

/**
 * Starts `openssl ocsp` answering for `ca`'s certificates listed in `entries` (others get "unknown"),
 * signing with `signer` (default the CA itself), with a nextUpdate `nmin` minutes ahead when given.
 */
export async function startOpensslOcsp(options: {
  dir: string;
  ca: Minted;
  entries: readonly IndexEntry[];
  signer?: Minted;
  nmin?: number;
}): Promise<OpensslResponder> {
  const { dir, ca, entries } = options;
  const signer = options.signer ?? ca;
  const at = (f: string) => join(dir, f);
  writeFileSync(at("index.txt"), entries.map((e) => `${indexLine(e)}\n`).join(""));
  writeFileSync(at("ca.pem"), ca.pem);
  writeFileSync(at("signer.pem"), signer.pem);
  writeFileSync(at("signer.key"), await exportPrivateKeyPem(signer.keys.privateKey));
  // openssl ocsp needs a port number: one found free may be taken by a parallel test before openssl binds
  // it, and openssl then exits (it never says ACCEPT on a port it did not bind), so pick again.
  let port = 0;
  let child: ChildProcess | undefined;
  for (let attempt = 1; child === undefined; attempt++) {
    port = await freePort();
    const args = ["ocsp", "-index", at("index.txt"), "-port", String(port), "-CA", at("ca.pem")];
    args.push("-rsigner", at("signer.pem"), "-rkey", at("signer.key"), "-ignore_err");
    if (options.nmin) args.push("-nmin", String(options.nmin));
    const started = spawn("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
    try {
      await waitForAccept(started, 15_000);
      child = started;
    } catch (err) {
      started.kill("SIGKILL");
      if (attempt >= 5 || !/exited/.test(String(err))) throw err;
    }
  }
  // Keep draining its output so that a chatty responder never blocks on a full pipe.
  child.stdout?.resume();
  child.stderr?.resume();
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
