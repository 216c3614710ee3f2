// Identity headers for the upstream: exact XFCC strings (with quoting and escaping), RFC 9440 fields, device/consumer.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { type Certificate, parseCertificate, toPem } from "../identity/certificate.ts";
import type { DeviceIdentity } from "../identity/types.ts";
import { x509 } from "../identity/x509.ts";
import {
  buildIdentityHeaders,
  DEFAULT_IDENTITY_HEADER_OPTIONS,
  formatXfcc,
  type IdentityHeaderOptions,
} from "./identity-headers.ts";

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY = 86_400_000;

type Keys = Awaited<ReturnType<typeof newKeys>>;

function newKeys() {
  return globalThis.crypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
}

interface Issued {
  cert: Certificate;
  keys: Keys;
  name: string;
}

async function issue(
  subject: string,
  issuer: Issued | undefined,
  sans: x509.JsonGeneralName[] = [],
  ca = false,
): Promise<Issued> {
  const keys = await newKeys();
  const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(ca, undefined, true)];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans));
  const generated = await x509.X509CertificateGenerator.create({
    serialNumber: String(Math.floor(Math.random() * 1e9) + 1),
    subject,
    issuer: issuer?.name ?? subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + DAY),
    publicKey: keys.publicKey,
    signingKey: (issuer?.keys ?? keys).privateKey,
    signingAlgorithm: ALG,
    extensions,
  });
  return { cert: parseCertificate(new Uint8Array(generated.rawData)), keys, name: subject };
}

const root = await issue("CN=Acme Root, O=Acme", undefined, [], true);
const intermediate = await issue("CN=Acme Devices CA, O=Acme", root, [], true);
const leaf = await issue('CN=dev\\,ice \\"1\\", O=Acme', intermediate, [
  { type: "url", value: "spiffe://acme/device/1" },
  { type: "url", value: "urn:acme:device;id=1" },
  { type: "dns", value: "dev1.example.com" },
]);

const identity: DeviceIdentity = {
  leaf: leaf.cert,
  path: [intermediate.cert, root.cert],
  trustStore: "devices",
  deviceId: "device-001",
};

const hash = createHash("sha256").update(leaf.cert.der).digest("hex");

test("XFCC: Hash, quoted and escaped Subject, each URI and DNS SAN, quoting only where needed", () => {
  assert.equal(leaf.cert.subject, 'O=Acme,CN=dev\\,ice \\"1\\"');
  const headers = buildIdentityHeaders(identity, DEFAULT_IDENTITY_HEADER_OPTIONS);
  assert.equal(
    headers["x-forwarded-client-cert"],
    `Hash=${hash};Subject="O=Acme,CN=dev\\\\,ice \\\\\\"1\\\\\\"";` +
      `URI=spiffe://acme/device/1;URI="urn:acme:device;id=1";DNS=dev1.example.com`,
  );
});

test("XFCC: Cert and Chain are the URL-encoded PEM, quoted, leaf first", () => {
  const xfcc = formatXfcc(identity, true, true);
  const cert = encodeURIComponent(toPem(leaf.cert));
  const chain = encodeURIComponent(toPem(leaf.cert) + toPem(intermediate.cert) + toPem(root.cert));
  assert.ok(cert.startsWith("-----BEGIN%20CERTIFICATE-----%0A"));
  assert.ok(xfcc.startsWith(`Hash=${hash};Cert="${cert}";Chain="${chain}";Subject="`), xfcc.slice(0, 200));
  assert.equal(decodeURIComponent(cert), toPem(leaf.cert));
});

test("RFC 9440: client-cert is the leaf's DER as a byte sequence; the chain excludes leaf and trust anchor", () => {
  const options: IdentityHeaderOptions = { ...DEFAULT_IDENTITY_HEADER_OPTIONS, rfc9440: true };
  const headers = buildIdentityHeaders(identity, options);
  assert.equal(headers["client-cert"], `:${leaf.cert.der.toString("base64")}:`);
  assert.equal(headers["client-cert-chain"], `:${intermediate.cert.der.toString("base64")}:`);

  const twoIntermediates = buildIdentityHeaders(
    { ...identity, path: [intermediate.cert, intermediate.cert, root.cert] },
    options,
  );
  const b64 = intermediate.cert.der.toString("base64");
  assert.equal(twoIntermediates["client-cert-chain"], `:${b64}:, :${b64}:`);

  const directlyUnderRoot = buildIdentityHeaders({ ...identity, path: [root.cert] }, options);
  assert.equal(directlyUnderRoot["client-cert"], `:${leaf.cert.der.toString("base64")}:`);
  assert.equal(directlyUnderRoot["client-cert-chain"], undefined);

  assert.equal(buildIdentityHeaders(identity)["client-cert"], undefined, "off by default (RFC 9440 opt-in)");
});

test("device and consumer headers, with fallbacks when the device is not registered", () => {
  const headers = buildIdentityHeaders(identity);
  assert.equal(headers["x-device-id"], "device-001");
  assert.equal(headers["x-consumer-id"], "device-001");
  assert.equal(headers["x-consumer-username"], "device-001");

  assert.equal(headers["x-device-groups"], undefined, "no groups without a registry lookup");
  const grouped = buildIdentityHeaders({ ...identity, groups: ["fleet-a", "eu west", "a,b"] });
  assert.equal(grouped["x-device-groups"], "fleet-a,eu west,a%2Cb");

  const anonymous = buildIdentityHeaders({ ...identity, deviceId: undefined });
  assert.equal(anonymous["x-device-id"], undefined);
  assert.equal(anonymous["x-consumer-id"], hash);
  assert.equal(anonymous["x-consumer-username"], 'dev,ice "1"');

  const off = buildIdentityHeaders(identity, {
    xfcc: { enabled: false, cert: false, chain: false },
    rfc9440: false,
    device: false,
    consumer: false,
  });
  assert.deepEqual(off, {});
});

test("no header value carries CR, LF or characters outside printable ASCII", async () => {
  const hostile = await issue("CN=Gerät 東京, O=Acme", intermediate, [
    { type: "url", value: "urn:x\r\nx-injected: 1" },
    { type: "dns", value: "evil\n.example" },
  ]);
  const headers = buildIdentityHeaders(
    { ...identity, leaf: hostile.cert, deviceId: "dev\r\nice" },
    { xfcc: { enabled: true, cert: true, chain: true }, rfc9440: true, device: true, consumer: true },
  );
  for (const [name, value] of Object.entries(headers)) {
    assert.doesNotMatch(value, /[^\t\x20-\x7e]/, name);
  }
  const xfcc = headers["x-forwarded-client-cert"] ?? "";
  assert.ok(xfcc.includes("URI=urn:x%0D%0Ax-injected: 1;DNS=evil%0A.example"), xfcc);
  assert.ok(xfcc.includes('Subject="O=Acme,CN=Ger\\\\C3\\\\A4t \\\\E6\\\\9D\\\\B1\\\\E4\\\\BA\\\\AC"'), xfcc);
  assert.equal(headers["x-device-id"], "dev%0D%0Aice");
});
