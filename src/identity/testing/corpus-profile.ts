// Test helper: certificates that break one RFC 5280 profile rule each (key identifiers, criticality, CA
// flags, names, serial numbers, empty EKU), the key policy (RSA size and exponent, curves) and the chain
// limits, all under corpus.ts's root and intermediate.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { EKU } from "../certificate.ts";
import { compileTrustStore } from "../trust-store.ts";
import { x509 } from "../x509.ts";
import { int, root, VALID } from "./corpus.ts";
import { cidrBytes, seq, tagged } from "./der-encode.ts";
import {
  type Minted,
  type MintOptions,
  mint,
  mintCa,
  mintDevice,
  mintUnparsed,
  nameConstraints,
} from "./mint.ts";
import { deviceExtensions, mintRaw, rawKeys, rsaSpki, signerOf } from "./mint-raw.ts";

type Extra = Omit<MintOptions, "subject" | "issuer">;
const ca = (subject: string, issuer: Minted = root, extra: Extra = {}) =>
  mintCa(subject, issuer, { ...VALID, ...extra });
const device = (cn: string, issuer: Minted = int, extra: Extra = {}) =>
  mintDevice(cn, issuer, { ...VALID, ...extra });
const ext = (oid: string, critical: boolean, der: Uint8Array) => new x509.Extension(oid, critical, der);
/** The device CA's key identifier, for key-identifier extensions built by hand (e.g. marked critical). */
const KEY_ID = Buffer.from(int.cert.subjectKeyId ?? "", "hex");
const criticalSan = (value: string) =>
  ext("2.5.29.17", true, seq(tagged(6, false, Buffer.from(value, "latin1"))));

// ---- key identifiers ----
export const leafNoAki = await device("no-aki", int, { aki: false });
export const intNoAki = await ca("O=Acme, CN=No-AKI CA", root, { aki: false });
export const underIntNoAki = await device("under-no-aki", intNoAki);
export const intNoSki = await ca("O=Acme, CN=No-SKI CA", root, { ski: false });
export const underIntNoSki = await device("under-no-ski", intNoSki);
export const leafCriticalAki = await device("critical-aki", int, {
  aki: false,
  extensions: [ext("2.5.29.35", true, seq(tagged(0, false, KEY_ID)))],
});
export const intCriticalSki = await ca("O=Acme, CN=Critical-SKI CA", root, {
  ski: false,
  extensions: [ext("2.5.29.14", true, Buffer.concat([Buffer.from([4, 20]), KEY_ID]))],
});
export const underIntCriticalSki = await device("under-critical-ski", intCriticalSki, { aki: false });
/** A root without subjectKeyIdentifier: a store holding it is refused under the strict profile. */
export const rootNoSki = await mintCa("O=Acme, CN=No-SKI Root", undefined, { ...VALID, ski: false });

// ---- name constraints ----
export const leafWithNc = await device("leaf-with-nc", int, {
  extensions: [nameConstraints({ permitted: [{ dns: "example.com" }] })],
});
export const intNonCriticalNc = await ca("O=Acme, CN=Non-critical NC CA", root, {
  extensions: [
    ext("2.5.29.30", false, seq(tagged(0, true, seq(tagged(2, false, Buffer.from("example.com")))))),
  ],
});
export const underNonCriticalNc = await device("under-nc-noncritical", intNonCriticalNc, {
  sanDns: ["a.example.com"],
});
export const ncDotDomain = await ca("O=Acme, CN=NC dot CA", root, {
  extensions: [nameConstraints({ permitted: [{ dns: ".example.com" }] })],
});
export const dotApex = await device("dot-apex", ncDotDomain, { sanDns: ["example.com"] });
export const dotSub = await device("dot-sub", ncDotDomain, { sanDns: ["a.example.com"] });
export const dotUnderscore = await device("dot-underscore", ncDotDomain, {
  sanDns: ["bad_name.example.com"],
});
export const ncEmail = await ca("O=Acme, CN=NC email CA", root, {
  extensions: [nameConstraints({ permitted: [{ email: "example.com" }] })],
});
export const emailNoAt = await device("email-no-at", ncEmail, { sanEmails: ["no-at-sign"] });
export const ncIp = await ca("O=Acme, CN=NC IP CA", root, {
  extensions: [nameConstraints({ excluded: [{ ip: "10.0.0.0/8" }] })],
});
/** An iPAddress subtree of 5 bytes (neither 8 nor 32): the CA is malformed. */
export const ncIpBadLength = await mintUnparsed({
  ...VALID,
  subject: "O=Acme, CN=NC bad IP CA",
  issuer: root,
  ca: true,
  keyUsage: ["keyCertSign", "cRLSign"],
  extensions: [
    ext(
      "2.5.29.30",
      true,
      seq(tagged(1, true, seq(tagged(7, false, cidrBytes("10.0.0.0/8").subarray(0, 5))))),
    ),
  ],
});

// ---- CA flags, subjects, SAN ----
export const intNonCriticalBc = await mint({
  ...VALID,
  subject: "O=Acme, CN=Non-critical BC CA",
  issuer: root,
  keyUsage: ["keyCertSign", "cRLSign"],
  extensions: [new x509.BasicConstraintsExtension(true, undefined, false)],
});
export const underNonCriticalBc = await device("under-bc-noncritical", intNonCriticalBc);
export const rootNonCriticalBc = await mint({
  ...VALID,
  subject: "O=Acme, CN=Non-critical BC Root",
  keyUsage: ["keyCertSign", "cRLSign"],
  extensions: [new x509.BasicConstraintsExtension(true, undefined, false)],
});
export const leafKeyCertSign = await device("leaf-keycertsign", int, {
  keyUsage: ["digitalSignature", "keyCertSign"],
});
export const intEmptySubject = await ca("", root, { extensions: [criticalSan("urn:ca:empty")] });
export const underEmptySubject = await device("under-empty-subject", intEmptySubject);
export const intPolicyConstraints = await ca("O=Acme, CN=Non-critical policyConstraints CA", root, {
  extensions: [ext("2.5.29.36", false, Uint8Array.from([0x30, 0x03, 0x80, 0x01, 0x00]))],
});
export const underPolicyConstraints = await device("under-pc", intPolicyConstraints);
const emptySubjectLeaf = (san: x509.Extension) =>
  mint({
    ...VALID,
    subject: "",
    issuer: int,
    keyUsage: ["digitalSignature"],
    extKeyUsage: [EKU.clientAuth],
    extensions: [san],
  });
export const emptySubjectNonCriticalSan = await emptySubjectLeaf(
  new x509.SubjectAlternativeNameExtension([{ type: "url", value: "urn:device:anon-1" }], false),
);
export const emptySubjectCriticalSan = await emptySubjectLeaf(criticalSan("urn:device:anon-2"));
export const dnsUnderscore = await device("dns-underscore", int, { sanDns: ["bad_name.example.com"] });
export const emptyEku = await device("empty-eku", int, { extKeyUsage: [] });
const serialLeaf = (cn: string, hex: string) =>
  mintRaw({
    ...VALID,
    subject: `CN=${cn}`,
    issuer: signerOf(int),
    serialBytes: Buffer.from(hex, "hex"),
    extensions: deviceExtensions(cn),
  });
export const serialNegative = serialLeaf("serial-negative", "80112233");
export const serialZero = serialLeaf("serial-zero", "00");
export const serialLong = serialLeaf("serial-long", `01${"ab".repeat(20)}`);
/** 20 value octets and the sign octet that keeps them positive: within the limit. */
export const serialTwenty = serialLeaf("serial-twenty", `00${"ab".repeat(20)}`);
/** A subject of ~300 characters: human output shortens it. */
export const longSubject = await mint({
  ...VALID,
  subject: `CN=${"x".repeat(300)}`,
  issuer: int,
  keyUsage: ["digitalSignature"],
  extKeyUsage: [EKU.clientAuth],
});

// ---- depth: self-issued CAs do not count ----
/** The device CA re-keyed: the new key certified by the old one under the same name (self-issued). */
export const rolloverInt = await ca("O=Acme, CN=Acme Device CA", int, { pathLength: 0 });
export const underRollover = await device("under-rollover", rolloverInt);
const deepA = await ca("O=Acme, CN=Depth A", root);
export const deepB = await ca("O=Acme, CN=Depth B", deepA);
/** Same name as deepA, another key, no key identifiers to rule it out: a candidate whose signature fails. */
export const deepAImpostor = await mintCa("O=Acme, CN=Depth A", root, { ...VALID, ski: false, aki: false });
export const underDeepB = await device("under-depth-b", deepB);
export { deepA };

// ---- key policy ----
const intSigner = signerOf(int);
const rsaLeaf = (cn: string, keys: ReturnType<typeof rawKeys>) =>
  mintRaw({ ...VALID, subject: `CN=${cn}`, issuer: intSigner, keys, extensions: deviceExtensions(cn) });
export const rsaE3Leaf = rsaLeaf(
  "rsa-e3",
  generateKeyPairSync("rsa", { modulusLength: 2048, publicExponent: 3 }),
);
export const rsa4096Leaf = rsaLeaf("rsa-4096", rawKeys({ type: "rsa", bits: 4096 }));
export const p384Leaf = mintRaw({
  ...VALID,
  subject: "CN=p384",
  issuer: intSigner,
  keys: rawKeys({ type: "ec", curve: "secp384r1" }),
  extensions: deviceExtensions("p384"),
});

/**
 * A CA named like the device CA whose RSA key has a 3,000-bit public exponent (a real modulus): verifying
 * anything with it costs as much as a private-key operation. The leaf below claims it as issuer.
 */
const modulusKeys = rawKeys({ type: "rsa", bits: 3072 });
const jwk = modulusKeys.publicKey.export({ format: "jwk" });
const modulus = Buffer.from(jwk.n ?? "", "base64url");
const hugeExponent = randomBytes(375);
hugeExponent[0] = (hugeExponent[0] ?? 0) | 0x80;
hugeExponent[374] = (hugeExponent[374] ?? 0) | 1;
export const hugeExponentCa = mintRaw({
  ...VALID,
  subject: "O=Acme, CN=Acme Device CA",
  issuer: signerOf(root),
  spki: rsaSpki(modulus, hugeExponent),
  keys: modulusKeys,
  extensions: [
    new x509.BasicConstraintsExtension(true, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
  ],
});
export const underHugeExponent = mintRaw({
  ...VALID,
  subject: "CN=under-huge-exponent",
  issuer: { nameDer: hugeExponentCa.cert.subjectDer, privateKey: rawKeys().privateKey },
  extensions: deviceExtensions("under-huge-exponent"),
  keyIds: false,
});

export const profileStores = {
  /** acme (root only) with the lenient profile. */
  lenient: compileTrustStore("acme-lenient", root.pem, { profile: "lenient" }),
  acmeDepth3: compileTrustStore("acme-depth-3", root.pem, { maxDepth: 3 }),
  rsaE3: compileTrustStore("acme-rsa-e3", root.pem, { rsaPublicExponents: [3, 65537] }),
  rsaMax3072: compileTrustStore("acme-rsa-3072", root.pem, { maxRsaBits: 3072 }),
  p256Only: compileTrustStore("acme-p256", root.pem, { curves: ["P-256"] }),
} as const;
