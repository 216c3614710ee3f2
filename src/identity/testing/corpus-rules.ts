// Test helper: the certificates of the RFC 5280 / Web-PKI rules beyond the basic corpus (name constraints,
// version rules, intermediate EKU, algorithm policy, notBeforeGrace), all under corpus.ts's root.
import { EKU } from "../certificate.ts";
import { compileTrustStore } from "../trust-store.ts";
import { at, int, NOW, root, VALID } from "./corpus.ts";
import {
  type Minted,
  type MintOptions,
  mint,
  mintCa,
  mintDevice,
  nameConstraints,
  type Subtree,
} from "./mint.ts";
import { caExtensions, deviceExtensions, mintRaw, rawKeys, signerOf } from "./mint-raw.ts";

type Extra = Omit<MintOptions, "subject" | "issuer">;
const ca = (subject: string, issuer?: Minted, extra: Extra = {}) =>
  mintCa(subject, issuer, { ...VALID, ...extra });
const device = (cn: string, issuer: Minted, extra: Extra = {}) =>
  mintDevice(cn, issuer, { ...VALID, ...extra });
const constrained = (cn: string, c: { permitted?: Subtree[]; excluded?: Subtree[] }, issuer: Minted = root) =>
  ca(`O=Acme, CN=${cn}`, issuer, { extensions: [nameConstraints(c)] });

// ---- nameConstraints ----
export const ncDns = await constrained("NC DNS CA", {
  permitted: [{ dns: "example.com" }],
  excluded: [{ dns: "blocked.example.com" }],
});
export const dnsInside = await device("dns-in", ncDns, { sanDns: ["gw.devices.example.com"] });
export const dnsApex = await device("dns-apex", ncDns, { sanDns: ["EXAMPLE.com"] });
/** An absolute name (trailing dot) is not in preferred name syntax: it cannot be judged, so it is refused. */
export const dnsAbsolute = await device("dns-absolute", ncDns, { sanDns: ["example.com."] });
export const dnsOutside = await device("dns-out", ncDns, { sanDns: ["gw.example.com", "evil.com"] });
export const dnsLookalike = await device("dns-lookalike", ncDns, { sanDns: ["notexample.com"] });
export const dnsExcluded = await device("dns-excluded", ncDns, { sanDns: ["a.blocked.example.com"] });
export const dnsWildcardExcluded = await device("dns-wild", ncDns, { sanDns: ["*.example.com"] });
/** No DNS SAN: a host-like CN is checked as a DNS name, a plain device id is not. */
export const cnHostOutside = await device("www.evil.com", ncDns);
export const cnHostInside = await device("box.example.com", ncDns);
export const cnPlain = await device("device-001", ncDns);

export const ncEmail = await constrained("NC Email CA", { permitted: [{ email: "example.com" }] });
export const emailInside = await device("email-in", ncEmail, { sanEmails: ["dev@example.com"] });
export const emailOutside = await device("email-out", ncEmail, { sanEmails: ["dev@mail.example.com"] });
export const emailInSubject = await mint({
  ...VALID,
  subject: "E=dev@evil.com, CN=email-subject",
  issuer: ncEmail,
  keyUsage: ["digitalSignature"],
  extKeyUsage: [EKU.clientAuth],
});

export const ncUri = await constrained("NC URI CA", { permitted: [{ uri: ".devices.example.com" }] });
export const uriInside = await device("uri-in", ncUri, { sanUris: ["https://a.devices.example.com:8443/x"] });
export const uriOutside = await device("uri-out", ncUri, { sanUris: ["https://devices.evil.com/"] });
/** urn:device:… has no host: it cannot be within a permitted URI subtree. */
export const uriUrn = await device("uri-urn", ncUri);

export const ncIp4 = await constrained("NC IPv4 CA", {
  permitted: [{ ip: "10.0.0.0/8" }],
  excluded: [{ ip: "10.66.0.0/16" }],
});
export const ip4Inside = await device("ip4-in", ncIp4, { sanIps: ["10.1.2.3"] });
export const ip4Outside = await device("ip4-out", ncIp4, { sanIps: ["192.168.1.10"] });
export const ip4Excluded = await device("ip4-excluded", ncIp4, { sanIps: ["10.66.1.1"] });
/** An IPv6 address is not within an IPv4 subtree. */
export const ip4GotV6 = await device("ip4-v6", ncIp4, { sanIps: ["2001:db8::1"] });

export const ncIp6 = await constrained("NC IPv6 CA", {
  permitted: [{ ip: "2001:db8::/32" }],
  excluded: [{ ip: "2001:db8:bad::/48" }],
});
export const ip6Inside = await device("ip6-in", ncIp6, { sanIps: ["2001:db8:1::42"] });
export const ip6Outside = await device("ip6-out", ncIp6, { sanIps: ["2001:dead::1"] });
export const ip6Excluded = await device("ip6-excluded", ncIp6, { sanIps: ["2001:db8:bad::1"] });

export const ncDn = await constrained("NC DN CA", { permitted: [{ dn: "O=Acme" }] });
export const dnInside = await mint({
  ...VALID,
  subject: "O=ACME, CN=dn-in",
  issuer: ncDn,
  keyUsage: ["digitalSignature"],
});
export const dnOutside = await mint({
  ...VALID,
  subject: "O=Evil, CN=dn-out",
  issuer: ncDn,
  keyUsage: ["digitalSignature"],
});
/** A root whose own nameConstraints (on the anchor) reach an intermediate's subject. */
export const ncRoot = await ca("O=Acme, CN=NC Root", undefined, {
  extensions: [nameConstraints({ permitted: [{ dn: "O=Acme" }] })],
});
const acmeDevice = (cn: string, issuer: Minted) =>
  mint({
    ...VALID,
    subject: `O=Acme, CN=${cn}`,
    issuer,
    keyUsage: ["digitalSignature"],
    extKeyUsage: [EKU.clientAuth],
  });
export const evilIntUnderNcRoot = await ca("O=Evil, CN=Evil CA", ncRoot);
export const underEvilInt = await acmeDevice("under-evil", evilIntUnderNcRoot);
export const acmeIntUnderNcRoot = await ca("O=Acme, CN=Fine CA", ncRoot);
export const underAcmeInt = await acmeDevice("under-fine", acmeIntUnderNcRoot);
/** Directory names are prefixes: a leaf without O=Acme under the constrained root is outside. */
export const plainUnderAcmeInt = await device("under-fine-plain", acmeIntUnderNcRoot);

// ---- version rules ----
const rootSigner = signerOf(root);
const v1IntKeys = rawKeys();
/** A v1 certificate (no extensions at all) used as an intermediate. */
export const v1Int = mintRaw({
  ...VALID,
  subject: "O=Acme, CN=V1 CA",
  issuer: rootSigner,
  version: 1,
  keys: v1IntKeys,
});
export const underV1Int = mintRaw({
  ...VALID,
  subject: "CN=under-v1",
  issuer: v1Int.signer,
  extensions: deviceExtensions("under-v1"),
});
/** A v1 leaf that nonetheless carries extensions. */
export const v1WithExtensions = mintRaw({
  ...VALID,
  subject: "CN=v1-ext",
  issuer: signerOf(int),
  version: 1,
  extensions: deviceExtensions("v1-ext"),
});

// ---- intermediate EKU ----
export const serverOnlyInt = await ca("O=Acme, CN=Server-only CA", root, { extKeyUsage: [EKU.serverAuth] });
export const underServerOnlyInt = await device("under-server-int", serverOnlyInt);
export const clientInt = await ca("O=Acme, CN=Client CA", root, { extKeyUsage: [EKU.clientAuth] });
export const underClientInt = await device("under-client-int", clientInt);

// ---- algorithm policy ----
const intSigner = signerOf(int);
const leaf = (cn: string, extra: Partial<Parameters<typeof mintRaw>[0]> = {}) =>
  mintRaw({ ...VALID, subject: `CN=${cn}`, issuer: intSigner, extensions: deviceExtensions(cn), ...extra });
export const ecdsaSha1Leaf = leaf("ecdsa-sha1", { signature: "ecdsaSha1" });
export const rsa1024Leaf = leaf("rsa-1024", { keys: rawKeys({ type: "rsa", bits: 1024 }) });
export const rsa2048Leaf = leaf("rsa-2048", { keys: rawKeys({ type: "rsa", bits: 2048 }) });
export const secp256k1Leaf = leaf("secp256k1", { keys: rawKeys({ type: "ec", curve: "secp256k1" }) });
export const p384Leaf = leaf("p384", { keys: rawKeys({ type: "ec", curve: "secp384r1" }) });
export const ed25519Leaf = leaf("ed25519", { keys: rawKeys({ type: "ed25519" }) });
export const ed448Leaf = leaf("ed448", { keys: rawKeys({ type: "ed448" }) });

/** An RSA 2048 intermediate, so that leaves can carry RSA PKCS#1 v1.5 SHA-1 and MD5 signatures. */
export const rsaInt = mintRaw({
  ...VALID,
  subject: "O=Acme, CN=RSA CA",
  issuer: rootSigner,
  keys: rawKeys({ type: "rsa", bits: 2048 }),
  extensions: caExtensions(),
});
const underRsa = (cn: string, signature: "sha1WithRSA" | "md5WithRSA" | "sha256WithRSA") =>
  mintRaw({
    ...VALID,
    subject: `CN=${cn}`,
    issuer: rsaInt.signer,
    signature,
    extensions: deviceExtensions(cn),
  });
export const rsaSha1Leaf = underRsa("rsa-sha1", "sha1WithRSA");
export const rsaMd5Leaf = underRsa("rsa-md5", "md5WithRSA");
export const rsaSha256Leaf = underRsa("rsa-sha256", "sha256WithRSA");
/** A weak-keyed intermediate: its key signs the leaf, so the path fails at that link. */
export const rsa1024Int = mintRaw({
  ...VALID,
  subject: "O=Acme, CN=RSA 1024 CA",
  issuer: rootSigner,
  keys: rawKeys({ type: "rsa", bits: 1024 }),
  extensions: caExtensions(),
});
export const underRsa1024Int = mintRaw({
  ...VALID,
  subject: "CN=under-rsa-1024",
  issuer: rsa1024Int.signer,
  extensions: deviceExtensions("under-rsa-1024"),
});
/** A SHA-1 self-signed root: its own signature is never checked, so it still anchors. */
const sha1RootKeys = rawKeys();
export const sha1Root = mintRaw({
  ...VALID,
  subject: "O=Legacy, CN=SHA-1 Root",
  keys: sha1RootKeys,
  signature: "ecdsaSha1",
  extensions: caExtensions(),
});
export const underSha1Root = mintRaw({
  ...VALID,
  subject: "CN=under-sha1-root",
  issuer: sha1Root.signer,
  extensions: deviceExtensions("under-sha1-root"),
});

// ---- notBeforeGrace ----
const MINUTE = 60_000;
export const GRACE_MS = 5 * MINUTE;
export const slightlyEarly = await device("early-2min", int, {
  notBefore: new Date(NOW.getTime() + 2 * MINUTE),
  notAfter: at(365),
});
export const tooEarly = await device("early-10min", int, {
  notBefore: new Date(NOW.getTime() + 10 * MINUTE),
  notAfter: at(365),
});

export const ruleStores = {
  ncRoot: compileTrustStore("nc-root", ncRoot.pem),
  legacy: compileTrustStore("legacy", sha1Root.pem),
  strictRsa: compileTrustStore("strict-rsa", root.pem, { minRsaBits: 3072 }),
  grace: compileTrustStore("grace", root.pem, { notBeforeGraceMs: GRACE_MS }),
} as const;
