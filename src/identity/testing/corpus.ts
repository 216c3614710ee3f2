// Test helper: one in-process PKI shared by the identity tests, every validity window relative to a fixed NOW.
import { type Certificate, chainFingerprint, EKU } from "../certificate.ts";
import { compileTrustStore } from "../trust-store.ts";
import type { ConnectionIdentity } from "../types.ts";
import { x509 } from "../x509.ts";
import { days, type Minted, type MintOptions, mint, mintCa, mintDevice, newKeys } from "./mint.ts";

export const NOW = new Date("2026-06-01T00:00:00.000Z");
export const at = (offsetDays: number): Date => new Date(NOW.getTime() + days(offsetDays));
/** Valid from a month ago to a year ahead. */
export const VALID = { notBefore: at(-30), notAfter: at(365) } as const;
type Extra = Omit<MintOptions, "subject" | "issuer">;

const ca = (subject: string, issuer?: Minted, extra: Extra = {}) =>
  mintCa(subject, issuer, { ...VALID, ...extra });
const device = (cn: string, issuer: Minted, extra: Extra = {}) =>
  mintDevice(cn, issuer, { ...VALID, ...extra });

export const root = await ca("O=Acme, CN=Acme Root CA");
export const int = await ca("O=Acme, CN=Acme Device CA", root, { pathLength: 0 });
export const good = await device("device-001", int);

export const otherRoot = await ca("O=Other, CN=Other Root CA");
export const otherInt = await ca("O=Other, CN=Other Device CA", otherRoot);
export const otherDevice = await device("other-001", otherInt);

export const expiredLeaf = await device("device-expired", int, { notBefore: at(-400), notAfter: at(-35) });
export const futureLeaf = await device("device-future", int, { notBefore: at(10), notAfter: at(400) });
export const expiredInt = await ca("O=Acme, CN=Acme Old Device CA", root, {
  notBefore: at(-800),
  notAfter: at(-1),
});
export const underExpiredInt = await device("device-under-expired", expiredInt, {
  notBefore: at(-100),
  notAfter: at(100),
});

const stranger = await newKeys();
/** Right issuer name, wrong key: the signature cannot verify with the intermediate's key. */
export const forged = await device("device-forged", int, { signingKey: stranger.privateKey });
/** Same DN as `good`, other key, issued properly: a different identity that must not share verdicts. */
export const twin = await device("device-001", int);

/** Issued by a device certificate (not a CA). */
export const underNonCa = await device("device-under-device", good);
/** A CA below the pathLen:0 intermediate, and a leaf below it. */
export const subInt = await ca("O=Acme, CN=Acme Sub CA", int);
export const underSubInt = await device("device-under-sub", subInt);

/** root → deep1 → deep2 → leaf: 4 certificates, no pathLen anywhere. */
export const deep1 = await ca("O=Acme, CN=Deep CA 1", root);
export const deep2 = await ca("O=Acme, CN=Deep CA 2", deep1);
export const deepLeaf = await device("device-deep", deep2);

export const caLeaf = await ca("O=Acme, CN=device-ca", int, {
  keyUsage: ["keyCertSign", "digitalSignature"],
});
export const serverOnly = await device("device-server", int, { extKeyUsage: [EKU.serverAuth] });
export const anyEku = await device("device-any-eku", int, { extKeyUsage: [EKU.anyExtendedKeyUsage] });
export const noEku = await device("device-no-eku", int, { extKeyUsage: undefined });
export const noDigitalSignature = await device("device-ku", int, { keyUsage: ["keyEncipherment"] });
export const noSan = await device("device-no-san", int, { sanUris: [] });

/** A CA whose keyUsage lacks keyCertSign, and a leaf it signed. */
export const crlOnlyInt = await ca("O=Acme, CN=Acme CRL-only CA", root, { keyUsage: ["cRLSign"] });
export const underCrlOnly = await device("device-under-crl-only", crlOnlyInt);

export const unknownCritical = await device("device-critical", int, {
  extensions: [new x509.Extension("1.2.3.4.5.6.7", true, new Uint8Array([0x05, 0x00]))],
});
/** A CA with a critical policyConstraints (requireExplicitPolicy 0), which the engine cannot honour. */
export const policyConstrainedInt = await ca("O=Acme, CN=Acme Policy-constrained CA", root, {
  extensions: [new x509.Extension("2.5.29.36", true, new Uint8Array([0x30, 0x03, 0x80, 0x01, 0x00]))],
});
export const underPolicyConstrained = await device("device-under-policy", policyConstrainedInt);
// nameConstraints: permittedSubtrees [ dNSName "example.com" ]
const nameConstraints = new x509.Extension(
  "2.5.29.30",
  true,
  new Uint8Array([0x30, 0x11, 0xa0, 0x0f, 0x30, 0x0d, 0x82, 0x0b, ...Buffer.from("example.com")]),
);
export const constrainedInt = await ca("O=Acme, CN=Acme Constrained CA", root, {
  extensions: [nameConstraints],
});
export const underConstrained = await device("device-constrained", constrainedInt);

/**
 * Cross-signing: one CA (same name, same key) certified by an old root (that cross-certificate has
 * expired with it) and by a new root. The client sends the expired one first: path building must back
 * out of it and try the other.
 */
export const oldRoot = await ca("O=Acme, CN=Acme Old Root", undefined, {
  notBefore: at(-3000),
  notAfter: at(-5),
});
export const newRoot = await ca("O=Acme, CN=Acme New Root");
const crossKeys = await newKeys();
export const crossViaOld = await ca("O=Acme, CN=Acme Cross CA", oldRoot, {
  keys: crossKeys,
  notBefore: at(-1000),
  notAfter: at(-5),
});
export const crossViaNew = await ca("O=Acme, CN=Acme Cross CA", newRoot, { keys: crossKeys });
export const underCross = await device("device-cross", crossViaNew);

/** Two CAs that each claim the other as issuer, and a leaf below one of them. */
const loopKeysA = await newKeys();
const loopKeysB = await newKeys();
export const loopA = await mint({
  ...VALID,
  subject: "CN=Loop A",
  issuerName: "CN=Loop B",
  keys: loopKeysA,
  signingKey: loopKeysB.privateKey,
  authorityKey: loopKeysB.publicKey,
  ca: true,
});
export const loopB = await mint({
  ...VALID,
  subject: "CN=Loop B",
  issuerName: "CN=Loop A",
  keys: loopKeysB,
  signingKey: loopKeysA.privateKey,
  authorityKey: loopKeysA.publicKey,
  ca: true,
});
export const underLoop = await device("device-loop", loopA);

/** Trust stores over the corpus. */
export const stores = {
  /** Root only: clients send the intermediate. */
  acme: compileTrustStore("acme", root.pem),
  /** Root and intermediate: clients may send the leaf alone. */
  acmeFull: compileTrustStore("acme-full", root.pem + int.pem),
  /** Only the device intermediate: partial-chain trust. */
  acmeIntOnly: compileTrustStore("acme-int-only", int.pem),
  acmeShallow: compileTrustStore("acme-shallow", root.pem, { maxDepth: 3 }),
  acmeServer: compileTrustStore("acme-server", root.pem, { purpose: "server" }),
  other: compileTrustStore("other", otherRoot.pem),
  cross: compileTrustStore("cross", oldRoot.pem + newRoot.pem),
} as const;

/** A ConnectionIdentity as the TLS layer builds it. */
export function identityOf(
  leaf: Certificate | undefined,
  presented: readonly Certificate[] = [],
): ConnectionIdentity {
  return {
    leaf,
    presented,
    chainFingerprint: leaf ? chainFingerprint([leaf, ...presented]) : "",
    sni: "localhost",
    listener: "main",
    resumed: false,
  };
}
