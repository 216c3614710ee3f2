// The EST wire formats against OpenSSL: it reads the certs-only PKCS#7 and CsrAttrs written here, and what
// OpenSSL writes is read back; base64 bodies round-trip, tolerate line breaks and armor, and refuse garbage.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createRootCa, type Issued, issueDeviceCertificate } from "../pki/issue.ts";
import {
  certsOnly,
  csrAttrs,
  fromBase64Body,
  Pkcs7Error,
  readCertsOnly,
  readCsrAttrs,
  toBase64Body,
} from "./pkcs7.ts";

const dir = mkdtempSync(join(tmpdir(), "portcullis-pkcs7-"));
const path = (name: string) => join(dir, name);
const openssl = (...args: string[]) => execFileSync("openssl", args, { encoding: "utf8" });
let root: Issued;
let leaf: Issued;
const der = (issued: Issued) => new Uint8Array(issued.cert.rawData);

before(async () => {
  root = await createRootCa({ subject: "O=Acme, CN=EST Test Root" });
  leaf = await issueDeviceCertificate(root, { deviceId: "device-042" });
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe("certsOnly / readCertsOnly", () => {
  test("openssl pkcs7 -print_certs reads both certificates, in order", () => {
    writeFileSync(path("two.p7b"), certsOnly([der(leaf), der(root)]));
    const out = openssl("pkcs7", "-inform", "DER", "-in", path("two.p7b"), "-print_certs");
    const subjects = [...out.matchAll(/^subject=\s*(.*)$/gm)].map((m) => m[1]?.replaceAll(" = ", "="));
    assert.deepEqual(subjects, ["CN=device-042", "O=Acme, CN=EST Test Root"]);
    assert.equal((out.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length, 2);
    assert.ok(out.includes(leaf.certPem), "the certificate bytes are kept");
  });

  test("reads what openssl crl2pkcs7 -nocrl writes, bytes and order kept", () => {
    writeFileSync(path("a.pem"), leaf.certPem);
    writeFileSync(path("b.pem"), root.certPem);
    execFileSync("openssl", [
      ...["crl2pkcs7", "-nocrl", "-certfile", path("a.pem"), "-certfile", path("b.pem")],
      ...["-outform", "DER", "-out", path("openssl.p7b")],
    ]);
    const certs = readCertsOnly(readFileSync(path("openssl.p7b")));
    assert.deepEqual(certs, [der(leaf), der(root)]);
  });

  test("round trip through a base64 body", () => {
    const body = toBase64Body(certsOnly([der(leaf)]));
    assert.match(body, /^([A-Za-z0-9+/=]{64}\n)*[A-Za-z0-9+/=]{1,64}\n$/);
    assert.deepEqual(readCertsOnly(fromBase64Body(body)), [der(leaf)]);
  });

  test("certsOnly refuses an empty list and a non-certificate", () => {
    assert.throws(() => certsOnly([]), /at least one certificate/);
    assert.throws(
      () => certsOnly([Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x00])]),
      /certificate 1: not an X.509/,
    );
  });

  test("readCertsOnly refuses garbage with a reason", () => {
    const p7 = certsOnly([der(leaf)]);
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(0), /empty/],
      [Buffer.from("hello world"), /not DER|not a CMS ContentInfo/],
      [Uint8Array.from([...p7, 0]), /1 bytes after the end/],
      [p7.slice(0, p7.length - 10), /not DER/],
      [der(leaf), /not a CMS ContentInfo|content type/],
      [csrAttrs(["1.2.840.113549.1.9.7"]), /not a CMS ContentInfo/],
    ];
    for (const [input, message] of cases) {
      assert.throws(
        () => readCertsOnly(input),
        (err: Error) => err instanceof Pkcs7Error && message.test(err.message),
      );
    }
  });

  test("readCertsOnly refuses a signed PKCS#7 and one without certificates", () => {
    writeFileSync(path("leaf.key"), leaf.keyPem);
    writeFileSync(path("msg.txt"), "hello");
    execFileSync("openssl", [
      ...["cms", "-sign", "-in", path("msg.txt"), "-signer", path("a.pem"), "-inkey", path("leaf.key")],
      ...["-outform", "DER", "-out", path("signed.p7")],
    ]);
    assert.throws(() => readCertsOnly(readFileSync(path("signed.p7"))), /signer|carries content/);
    execFileSync("openssl", ["crl2pkcs7", "-nocrl", "-outform", "DER", "-out", path("empty.p7b")]);
    assert.throws(() => readCertsOnly(readFileSync(path("empty.p7b"))), /holds no certificate/);
  });
});

describe("base64 bodies (RFC 8951)", () => {
  const bytes = Uint8Array.from({ length: 100 }, (_, i) => i);
  test("whitespace, CRLF and a PEM armor are tolerated", () => {
    const b64 = Buffer.from(bytes).toString("base64");
    assert.deepEqual(fromBase64Body(`  ${b64.slice(0, 10)}\r\n ${b64.slice(10)}\r\n`), bytes);
    assert.deepEqual(fromBase64Body(`-----BEGIN PKCS7-----\n${b64}\n-----END PKCS7-----\n`), bytes);
    assert.deepEqual(fromBase64Body(toBase64Body(bytes)), bytes);
  });

  test("garbage is refused, naming the problem", () => {
    assert.throws(() => fromBase64Body(" \n"), /empty/);
    assert.throws(() => fromBase64Body("AAA*"), /character "\*" is not base64/);
    assert.throws(() => fromBase64Body("AAAAA"), /length or padding/);
    assert.throws(() => fromBase64Body("AA=A"), /length or padding/);
    assert.throws(() => fromBase64Body("-----BEGIN PKCS7-----\nAAAA\n"), /not closed/);
  });
});

describe("csrAttrs", () => {
  const oids = ["1.2.840.113549.1.9.7", "1.2.840.10045.2.1", "1.3.132.0.34", "1.2.840.10045.4.3.3"];

  test("openssl asn1parse reads a SEQUENCE of OBJECT IDENTIFIERs", () => {
    writeFileSync(path("attrs.der"), csrAttrs(oids));
    const out = openssl("asn1parse", "-inform", "DER", "-in", path("attrs.der"));
    assert.match(out, /^\s*0:d=0.*cons: SEQUENCE/);
    const objects = [...out.matchAll(/prim: OBJECT\s+:(.*)$/gm)].map((m) => m[1]?.trim());
    assert.deepEqual(objects, ["challengePassword", "id-ecPublicKey", "secp384r1", "ecdsa-with-SHA384"]);
    assert.deepEqual(readCsrAttrs(csrAttrs(oids)), oids);
  });

  test("an empty list is an empty SEQUENCE; a bad OID is refused", () => {
    assert.deepEqual(csrAttrs([]), Uint8Array.from([0x30, 0x00]));
    assert.deepEqual(readCsrAttrs(csrAttrs([])), []);
    assert.throws(() => csrAttrs(["1.2.x"]), /"1.2.x" is not an object identifier/);
    assert.throws(() => csrAttrs(["1.40"]), /not an object identifier/);
  });

  test("readCsrAttrs takes an Attribute's type and refuses other entries", () => {
    // SEQUENCE { SEQUENCE { extensionRequest, SET { OID basicConstraints } } }
    const fixed = Buffer.from("3014301206092a864886f70d01090e31050603551d13", "hex");
    assert.deepEqual(readCsrAttrs(fixed), ["1.2.840.113549.1.9.14"]);
    assert.throws(() => readCsrAttrs(Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x00])), /entry 1/);
    assert.throws(() => readCsrAttrs(Uint8Array.from([0x02, 0x01, 0x00])), /not a SEQUENCE/);
  });
});
