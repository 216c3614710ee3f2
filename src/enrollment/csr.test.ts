// Tests of the CSR core on requests made by `openssl req` as devices make them: body decoding, the strict
// parse (fields, SANs, hostile bytes), proof of possession for every accepted algorithm and the refusals,
// and the key policy applied to requested keys.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { DEFAULT_CURVES, DEFAULT_RSA_EXPONENTS, keyPolicyProblem } from "../identity/algorithm-policy.ts";
import { CsrError, parseCsr, readCsrBody, verifyProofOfPossession } from "./csr.ts";

const dir = mkdtempSync(join(tmpdir(), "portcullis-csr-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;

/** A DER CSR from `openssl req -new`, with `keyArgs` choosing the key and `extra` adding options. */
function opensslCsr(keyArgs: string[], subject = "/CN=device-042", extra: string[] = []): Uint8Array {
  const out = join(dir, `req-${++counter}.der`);
  const key = join(dir, `key-${counter}.pem`);
  const args = ["req", "-new", ...keyArgs, "-nodes", "-keyout", key, "-subj", subject, ...extra];
  const run = spawnSync("openssl", [...args, "-outform", "DER", "-out", out], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  return new Uint8Array(readFileSync(out));
}

const EC_P256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
const RSA_2048 = ["-newkey", "rsa:2048"];
const SAN = [
  "-addext",
  "subjectAltName=URI:urn:device:device-042,DNS:d42.example.com,IP:10.0.0.7,email:a@b.c",
];

const ec = opensslCsr(EC_P256, "/CN=device-042", SAN);
const rsa = opensslCsr(RSA_2048);

async function rejects(promise: Promise<unknown>, kind: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof CsrError, `not a CsrError: ${err}`);
    assert.equal(err.kind, kind);
    assert.match(err.message, message);
    return true;
  });
}

function throwsCsr(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CsrError, `not a CsrError: ${err}`);
    assert.equal(err.kind, "malformed");
    assert.match(err.message, message);
    return true;
  });
}

test("readCsrBody: base64 with line breaks, PEM; binary, junk and two blocks are refused", () => {
  const b64 = Buffer.from(ec).toString("base64");
  assert.deepEqual(readCsrBody(Buffer.from(b64)), ec);
  const wrapped = `${b64.replace(/.{1,64}/g, "$&\r\n")}\n`;
  assert.deepEqual(readCsrBody(Buffer.from(wrapped)), ec);
  const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${b64.replace(/.{1,64}/g, "$&\n")}-----END CERTIFICATE REQUEST-----\n`;
  assert.deepEqual(readCsrBody(Buffer.from(pem)), ec);
  assert.deepEqual(
    readCsrBody(Buffer.from(pem.replace(/CERTIFICATE REQUEST/g, "NEW CERTIFICATE REQUEST"))),
    ec,
  );
  throwsCsr(
    () => readCsrBody(Buffer.from(pem.replace("END CERTIFICATE REQUEST", "END NEW CERTIFICATE REQUEST"))),
    /labels differ/,
  );
  throwsCsr(() => readCsrBody(Buffer.alloc(0)), /body is empty/);
  throwsCsr(() => readCsrBody(Buffer.from("   \r\n")), /body is empty/);
  throwsCsr(() => readCsrBody(Buffer.from(ec)), /binary DER.*base64/);
  throwsCsr(() => readCsrBody(Buffer.from("not base64!")), /not valid base64/);
  throwsCsr(() => readCsrBody(Buffer.from(b64.slice(1))), /not valid base64/);
  throwsCsr(() => readCsrBody(Buffer.from(`${pem}${pem}`)), /exactly one CERTIFICATE REQUEST/);
  throwsCsr(
    () => readCsrBody(Buffer.from(pem.replace(/CERTIFICATE REQUEST/g, "CERTIFICATE"))),
    /exactly one/,
  );
  throwsCsr(() => readCsrBody(Buffer.from(`junk\n${pem}`)), /exactly one/);
});

test("parseCsr: EC P-256 with SANs", () => {
  const csr = parseCsr(ec);
  assert.equal(csr.subject, "CN=device-042");
  assert.deepEqual(csr.commonNames, ["device-042"]);
  assert.deepEqual(csr.san, {
    uris: ["urn:device:device-042"],
    dns: ["d42.example.com"],
    emails: ["a@b.c"],
    ips: ["10.0.0.7"],
    other: 0,
  });
  assert.deepEqual(csr.requestedExtensions, ["2.5.29.17"]);
  assert.deepEqual(csr.publicKey, { type: "ec", curve: "P-256" });
  assert.equal(csr.signatureAlgorithm.name, "ecdsa-with-SHA256");
  assert.equal(Buffer.from(csr.subjectDer).toString("hex").slice(0, 2), "30");
  assert.equal(csr.spki[0], 0x30);
  assert.deepEqual(csr.der, ec);
});

test("parseCsr: RSA 2048 without extensions, multi-attribute subject", () => {
  const csr = parseCsr(rsa);
  assert.deepEqual(csr.publicKey, { type: "rsa", bits: 2048, exponent: 65537n });
  assert.equal(csr.signatureAlgorithm.name, "sha256WithRSAEncryption");
  assert.deepEqual(csr.requestedExtensions, []);
  assert.deepEqual(csr.san, { uris: [], dns: [], emails: [], ips: [], other: 0 });
  const multi = parseCsr(
    opensslCsr(EC_P256, "/O=Acme/OU=Fleet/CN=a/CN=b,c", ["-addext", "basicConstraints=CA:FALSE"]),
  );
  assert.equal(multi.subject, "CN=b\\,c,CN=a,OU=Fleet,O=Acme");
  assert.deepEqual(multi.commonNames, ["a", "b,c"]);
  assert.deepEqual(multi.requestedExtensions, ["2.5.29.19"]);
  const dirName = parseCsr(
    opensslCsr(EC_P256, "/CN=x", [
      "-addext",
      "subjectAltName=RID:1.2.3.4,otherName:1.2.3.5;UTF8:hi,URI:urn:x",
    ]),
  );
  assert.equal(dirName.san.other, 2);
  assert.deepEqual(dirName.san.uris, ["urn:x"]);
});

test("proof of possession: EC P-256/384/521, RSA PKCS#1 and PSS, Ed25519 verify", async () => {
  const cases: [string[], string[], string][] = [
    [EC_P256, [], "ecdsa-with-SHA256"],
    [["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"], ["-sha384"], "ecdsa-with-SHA384"],
    [["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-521"], ["-sha512"], "ecdsa-with-SHA512"],
    [RSA_2048, [], "sha256WithRSAEncryption"],
    [RSA_2048, ["-sha512"], "sha512WithRSAEncryption"],
    [RSA_2048, ["-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"], "rsassa-pss"],
    [["-newkey", "rsa-pss", "-pkeyopt", "rsa_keygen_bits:2048"], ["-sha384"], "rsassa-pss"],
    [["-newkey", "ed25519"], [], "Ed25519"],
  ];
  for (const [keyArgs, extra, name] of cases) {
    const csr = parseCsr(opensslCsr(keyArgs, "/CN=pop", extra));
    assert.equal(csr.signatureAlgorithm.name, name);
    await verifyProofOfPossession(csr);
  }
  const ed = parseCsr(opensslCsr(["-newkey", "ed25519"]));
  assert.deepEqual(ed.publicKey, { type: "ed25519" });
  await verifyProofOfPossession(parseCsr(ec));
  await verifyProofOfPossession(parseCsr(rsa));
});

test("proof of possession: a flipped signature bit, a changed subject, SHA-1 and MD5 are refused", async () => {
  for (const der of [ec, rsa]) {
    const flipped = new Uint8Array(der);
    flipped[flipped.length - 5] = (flipped[flipped.length - 5] ?? 0) ^ 0x01;
    await rejects(verifyProofOfPossession(parseCsr(flipped)), "proof_of_possession", /does not verify/);
  }
  // The subject's "device-042" becomes "device-043": the signed info changed, the signature did not.
  const hex = Buffer.from(ec)
    .toString("hex")
    .replace(Buffer.from("device-042").toString("hex"), Buffer.from("device-043").toString("hex"));
  const changed = parseCsr(new Uint8Array(Buffer.from(hex, "hex")));
  assert.equal(changed.subject, "CN=device-043");
  await rejects(verifyProofOfPossession(changed), "proof_of_possession", /does not verify.*possession/);
  const sha1 = parseCsr(opensslCsr(RSA_2048, "/CN=old", ["-sha1"]));
  await rejects(
    verifyProofOfPossession(sha1),
    "proof_of_possession",
    /sha1WithRSAEncryption: SHA-1 signatures are not accepted/,
  );
  const ecSha1 = parseCsr(opensslCsr(EC_P256, "/CN=old", ["-sha1"]));
  await rejects(verifyProofOfPossession(ecSha1), "proof_of_possession", /ecdsa-with-SHA1: SHA-1/);
  const md5 = parseCsr(opensslCsr(RSA_2048, "/CN=old", ["-md5"]));
  await rejects(verifyProofOfPossession(md5), "proof_of_possession", /md5WithRSAEncryption: MD5 signatures/);
});

test("proof of possession: a signature algorithm that does not fit the key is refused", async () => {
  // Graft the RSA request's signature algorithm and signature onto the EC request's info.
  const info = (der: Uint8Array) => {
    const lenBytes = (der[1] ?? 0) & 0x80 ? ((der[1] ?? 0) & 0x7f) + 2 : 2;
    return der.subarray(lenBytes);
  };
  const ecBody = info(ec);
  const rsaBody = info(rsa);
  const ecInfoLen = tlvLength(ecBody);
  const rsaInfoLen = tlvLength(rsaBody);
  const body = Buffer.concat([ecBody.subarray(0, ecInfoLen), rsaBody.subarray(rsaInfoLen)]);
  const der = Buffer.concat([Buffer.from([0x30, 0x82, body.length >> 8, body.length & 0xff]), body]);
  const csr = parseCsr(der);
  assert.equal(csr.signatureAlgorithm.name, "sha256WithRSAEncryption");
  await rejects(
    verifyProofOfPossession(csr),
    "proof_of_possession",
    /signed with sha256WithRSAEncryption but its public key is ec, not RSA/,
  );
});

/** Length of the whole TLV at the start of `buf`. */
function tlvLength(buf: Uint8Array): number {
  const first = buf[1] ?? 0;
  if (!(first & 0x80)) return 2 + first;
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + (buf[2 + i] ?? 0);
  return 2 + n + len;
}

test("parseCsr: trailing bytes, wrong version, garbage are malformed", () => {
  throwsCsr(() => parseCsr(Buffer.concat([ec, Buffer.from([0])])), /1 trailing byte/);
  throwsCsr(() => parseCsr(new Uint8Array(0)), /malformed certificate request/);
  throwsCsr(() => parseCsr(Buffer.from("hello world")), /malformed certificate request/);
  // version INTEGER 0 sits at a fixed place after the two SEQUENCE headers: 30 82 LL LL 30 82 LL LL 02 01 00.
  const v2 = new Uint8Array(rsa);
  assert.deepEqual([...v2.subarray(8, 11)], [2, 1, 0]);
  v2[10] = 1;
  throwsCsr(() => parseCsr(v2), /version is not v1/);
  // A certificate is not a request.
  throwsCsr(() => parseCsr(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])), /exactly info/);
});

test("parseCsr: hostile bytes (truncations, mutations, deep nesting, huge lengths) only ever throw CsrError", async () => {
  let parsedMutants = 0;
  const checks: Promise<void>[] = [];
  const outcome = (der: Uint8Array) => {
    const fail = (err: unknown) => {
      throw new Error(`non-CsrError for ${Buffer.from(der).toString("hex")}: ${err}`);
    };
    try {
      const csr = parseCsr(der);
      parsedMutants++;
      // A request that parses may still fail its proof of possession, but only ever with a CsrError.
      checks.push(
        verifyProofOfPossession(csr).catch((err: unknown) => {
          if (!(err instanceof CsrError)) fail(err);
        }),
      );
    } catch (err) {
      if (!(err instanceof CsrError)) fail(err);
    }
  };
  for (const sample of [ec, rsa]) {
    for (let n = 0; n < sample.length; n++) outcome(sample.subarray(0, n));
  }
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 4000; i++) {
    const mutated = new Uint8Array(i % 2 ? ec : rsa);
    for (let k = 0, m = 1 + rand(4); k < m; k++) mutated[rand(mutated.length)] = rand(256);
    outcome(mutated);
  }
  const deep = new Uint8Array(200_000);
  for (let i = 0; i < deep.length; i += 2) deep.set([0x30, 0x80], i);
  outcome(deep);
  const nested: number[] = [];
  for (let i = 0; i < 1000; i++) nested.push(0x30, 0x84, 0x00, 0x00, 0x00, 0x00);
  outcome(Uint8Array.from(nested));
  outcome(Uint8Array.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30, 0x00]));
  outcome(Uint8Array.from([0x30, 0x89, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
  for (let i = 0; i < 2000; i++) outcome(Uint8Array.from({ length: rand(64) }, () => rand(256)));
  await Promise.all(checks);
  assert.ok(
    parsedMutants > 100,
    `only ${parsedMutants} mutants parsed: the proof-of-possession path went unexercised`,
  );
});

test("keyPolicyProblem on requested keys: RSA-1024, secp256k1 on a P-256-only policy, exponent 3", () => {
  const policy = {
    minRsaBits: 2048,
    maxRsaBits: 8192,
    rsaPublicExponents: DEFAULT_RSA_EXPONENTS,
    curves: DEFAULT_CURVES,
  };
  const p256Only = { ...policy, curves: ["P-256"] };
  assert.equal(keyPolicyProblem(parseCsr(ec).publicKey, p256Only), undefined);
  assert.equal(keyPolicyProblem(parseCsr(rsa).publicKey, policy), undefined);
  const rsa1024 = parseCsr(opensslCsr(["-newkey", "rsa:1024"]));
  assert.deepEqual(rsa1024.publicKey.bits, 1024);
  assert.equal(
    keyPolicyProblem(rsa1024.publicKey, policy),
    "RSA keys of fewer than 2048 bits are not accepted",
  );
  const k1 = parseCsr(opensslCsr(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"]));
  assert.equal(k1.publicKey.curve, "secp256k1");
  assert.equal(keyPolicyProblem(k1.publicKey, p256Only), "only the curves P-256 are accepted");
  const e3 = parseCsr(opensslCsr(["-newkey", "rsa:2048", "-pkeyopt", "rsa_keygen_pubexp:3"]));
  assert.equal(e3.publicKey.exponent, 3n);
  assert.equal(
    keyPolicyProblem(e3.publicKey, policy),
    "its public exponent 3 is not one of 65537 (rsaPublicExponents)",
  );
  assert.equal(keyPolicyProblem(parseCsr(opensslCsr(["-newkey", "ed25519"])).publicKey, p256Only), undefined);
  assert.equal(keyPolicyProblem({ type: "ed448" }, policy), "the key type is not accepted");
});
