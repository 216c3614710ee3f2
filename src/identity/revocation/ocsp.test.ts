// OCSP requests and response verification over pkijs-built responses (correct and broken on purpose),
// the OCSP cache, and the combined view (revoked wins, then good, else unknown; epoch on every change).
import assert from "node:assert/strict";
import { test } from "node:test";
import * as pkijs from "pkijs";
import { parseCrls } from "./crl.ts";
import { CrlSnapshot } from "./crl-snapshot.ts";
import { hex } from "./der.ts";
import { OcspCache } from "./ocsp-cache.ts";
import { buildOcspRequest, certIdHashes, serialBytes } from "./ocsp-request.ts";
import { type OcspProblem, OcspResponseError, verifyOcspResponse } from "./ocsp-response.ts";
import { RevocationState } from "./revocation-state.ts";
import { buildOcspResponse, type ResponseSpec, requestedCertId } from "./testing/ocsp-builder.ts";
import { crlPem, device, HOUR, responder, testPki } from "./testing/pki.ts";

const pki = await testPki("Ocsp");
const leaf = await device("dev-1", pki.int);
const other = await device("dev-2", pki.int);
const delegate = await responder(pki.int);
const noEku = await responder(pki.int, { eku: false });
const foreign = await responder(pki.root); // issued by the root, answering for the intermediate's leaves
const now = new Date();
const certId = requestedCertId(buildOcspRequest(leaf.cert, pki.int.cert));

const verify = async (spec: ResponseSpec, maxAgeMs = HOUR) =>
  verifyOcspResponse(await buildOcspResponse(certId, spec), leaf.cert, pki.int.cert, now, maxAgeMs);

async function rejects(spec: ResponseSpec, problem: OcspProblem, message: RegExp) {
  await assert.rejects(
    () => verify(spec),
    (err) => err instanceof OcspResponseError && err.problem === problem && message.test(err.message),
  );
}

test("the request names the certificate by a SHA-1 CertID of its issuer and its exact serial", () => {
  const request = pkijs.OCSPRequest.fromBER(buildOcspRequest(leaf.cert, pki.int.cert));
  const id = request.tbsRequest.requestList[0]?.reqCert;
  assert.ok(id);
  assert.equal(id.hashAlgorithm.algorithmId, "1.3.14.3.2.26");
  const ours = certIdHashes(pki.int.cert, "sha1");
  assert.equal(hex(id.issuerNameHash.valueBlock.valueHexView), ours.issuerNameHash.toString("hex"));
  assert.equal(hex(id.issuerKeyHash.valueBlock.valueHexView), ours.issuerKeyHash.toString("hex"));
  assert.equal(hex(id.serialNumber.valueBlock.valueHexView), hex(serialBytes(leaf.cert)));
});

test("good, revoked (time and reason) and unknown, signed by the CA by name or by key", async () => {
  const byName = await verify({ status: "good", signer: pki.int, embed: false });
  assert.equal(byName.status, "good");
  assert.equal(byName.signer, 'CA "CN=Ocsp Device CA,O=Ocsp"');
  assert.equal((await verify({ status: "good", signer: pki.int, embed: false, byKey: true })).status, "good");
  const revokedAt = new Date("2026-02-03T04:05:06.000Z");
  const revoked = await verify({ status: "revoked", revokedAt, reason: 1, signer: pki.int });
  assert.deepEqual(
    [revoked.status, revoked.revokedAt, revoked.reason],
    ["revoked", revokedAt, "keyCompromise"],
  );
  assert.equal((await verify({ status: "unknown", signer: pki.int })).status, "unknown");
});

test("a delegated responder with id-kp-OCSPSigning issued by the CA may answer", async () => {
  const answer = await verify({ status: "good", signer: delegate });
  assert.equal(answer.signer, 'delegate "CN=OCSP responder of Ocsp Device CA"');
  assert.equal((await verify({ status: "good", signer: delegate, byKey: true })).status, "good");
});

test("unauthorised signers, bad signatures, wrong CertIDs and bad times are refused, each by name", async () => {
  await rejects(
    { status: "good", signer: noEku },
    "unauthorized_responder",
    /lacks extendedKeyUsage id-kp-OCSPSigning/,
  );
  await rejects(
    { status: "good", signer: foreign },
    "unauthorized_responder",
    /is not issued by CA "CN=Ocsp Device CA/,
  );
  await rejects(
    { status: "good", signer: delegate, embed: false },
    "unauthorized_responder",
    /signed by neither/,
  );
  await rejects(
    { status: "good", signer: pki.int, corruptSignature: true },
    "bad_signature",
    /does not verify/,
  );
  await rejects(
    { status: "revoked", signer: pki.int, wrongCertId: true },
    "no_matching_response",
    /no status for serial/,
  );
  await rejects(
    { status: "good", signer: pki.int, nextUpdate: new Date(now.getTime() - 60_000) },
    "stale",
    /expired/,
  );
  await rejects(
    { status: "good", signer: pki.int, nextUpdate: null, thisUpdate: new Date(now.getTime() - 2 * HOUR) },
    "stale",
    /expired/,
  );
  await rejects(
    { status: "good", signer: pki.int, thisUpdate: new Date(now.getTime() + HOUR) },
    "not_yet_valid",
    /future/,
  );
  await rejects(
    { status: "good", signer: pki.int, responseStatus: 3 },
    "unsuccessful",
    /responder answered tryLater/,
  );
  assert.throws(
    () => verifyOcspResponse(Buffer.from("nope"), leaf.cert, pki.int.cert, now, HOUR),
    (err) => err instanceof OcspResponseError && err.problem === "malformed",
  );
});

const answer = (status: "good" | "revoked" | "unknown", expiresAt = new Date(now.getTime() + HOUR)) => ({
  kind: "answer" as const,
  answer: { status, thisUpdate: now, nextUpdate: expiresAt, revokedAt: now, signer: "CA" },
  expiresAt,
});

test("OCSP cache: entries live until they expire; only visible changes count; bounded in size", () => {
  const cache = new OcspCache(2);
  assert.equal(cache.status(leaf.cert, pki.int.cert, now), undefined);
  assert.equal(cache.set(leaf.cert, pki.int.cert, answer("good"), now), true);
  assert.equal(cache.set(leaf.cert, pki.int.cert, answer("good"), now), false, "same answer again");
  assert.deepEqual(cache.status(leaf.cert, pki.int.cert, now), { status: "good", source: "ocsp" });
  assert.equal(cache.status(leaf.cert, pki.int.cert, new Date(now.getTime() + 2 * HOUR)), undefined);
  const failure = { kind: "failure" as const, detail: "down", expiresAt: new Date(now.getTime() + 1000) };
  assert.equal(cache.set(other.cert, pki.int.cert, failure, now), false, "nothing to something unknown");
  assert.deepEqual(cache.status(other.cert, pki.int.cert, now), { status: "unknown", detail: "OCSP: down" });
  cache.set(pki.int.cert, pki.root.cert, answer("unknown"), now);
  assert.equal(cache.size, 2);
  assert.equal(cache.status(leaf.cert, pki.int.cert, now), undefined, "the oldest entry was evicted");
});

test("view: revoked from either source wins, then good from either, else unknown with both reasons", async () => {
  const state = new RevocationState();
  const unknown = state.status(leaf.cert, pki.int.cert, now);
  assert.match(
    unknown.status === "unknown" ? unknown.detail : "",
    /no CRL of issuer .*; no OCSP answer is cached/,
  );

  const epoch0 = state.epoch;
  const crls = parseCrls(Buffer.from(await crlPem(pki.int, { revoked: [other] })), "crl");
  assert.equal(state.swapCrls(state.crls.with("f", crls)), true);
  assert.equal(state.swapCrls(state.crls.with("f", crls)), false, "same CRL: no new epoch");
  assert.equal(state.epoch, epoch0 + 1);

  assert.equal(state.recordOcsp(leaf.cert, pki.int.cert, answer("revoked"), now), true);
  assert.equal(state.epoch, epoch0 + 2);
  assert.equal(state.status(leaf.cert, pki.int.cert, now).status, "revoked", "OCSP revoked beats CRL good");
  state.recordOcsp(other.cert, pki.int.cert, answer("good"), now);
  const crlRevoked = state.status(other.cert, pki.int.cert, now);
  assert.equal(crlRevoked.status === "revoked" && crlRevoked.source, "crl", "CRL revoked beats OCSP good");

  assert.equal(state.swapCrls(CrlSnapshot.EMPTY), true);
  assert.deepEqual(state.status(other.cert, pki.int.cert, now), { status: "good", source: "ocsp" });
  state.expire(new Date(now.getTime() + 2 * HOUR));
  assert.equal(state.status(other.cert, pki.int.cert, new Date(now.getTime() + 2 * HOUR)).status, "unknown");
});
