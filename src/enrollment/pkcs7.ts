// The EST wire formats (RFC 7030, RFC 8951): the certs-only PKCS#7 that /cacerts and /simpleenroll answer,
// the CsrAttrs of /csrattrs, and the base64 bodies that carry them. Encoding and strict decoding only.
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";

/** id-signedData and id-data (RFC 5652 §5.1, §4). */
const ID_SIGNED_DATA = "1.2.840.113549.1.7.2";
const ID_DATA = "1.2.840.113549.1.7.1";

/** Thrown for bytes or text that are not the structure asked for; the message says what is wrong. */
export class Pkcs7Error extends Error {
  override name = "Pkcs7Error";
}

/** One DER element, the whole input: `what` names it in errors. Trailing bytes are an error. */
function parseDer(der: Uint8Array, what: string): asn1js.AsnType {
  if (der.byteLength === 0) throw new Pkcs7Error(`${what}: empty`);
  const { offset, result } = asn1js.fromBER(der);
  if (offset === -1 || result.error) {
    throw new Pkcs7Error(`${what}: not DER${result.error ? ` (${result.error})` : ""}`);
  }
  if (offset !== der.byteLength) {
    throw new Pkcs7Error(`${what}: ${der.byteLength - offset} bytes after the end of the DER`);
  }
  return result;
}

function isContextTag(element: asn1js.AsnType, tag: number): boolean {
  return element.idBlock.tagClass === 3 && element.idBlock.tagNumber === tag;
}

/**
 * A degenerate CMS SignedData ("certs-only", RFC 5652 §5.2 with no signers), as RFC 7030 §4.1.3 and
 * §4.2.3 return. The certificates keep their order and bytes (leaf first when a chain is given); like
 * OpenSSL, the [0] IMPLICIT SET is written in that order rather than sorted.
 *
 *   ContentInfo ::= SEQUENCE { contentType id-signedData, content [0] EXPLICIT SignedData }
 *   SignedData ::= SEQUENCE { version 1, digestAlgorithms {}, encapContentInfo { id-data },
 *                             certificates [0] IMPLICIT CertificateSet, signerInfos {} }
 */
export function certsOnly(ders: readonly Uint8Array[]): Uint8Array {
  if (ders.length === 0) throw new Pkcs7Error("a certs-only PKCS#7 needs at least one certificate");
  // Checked so that garbage never goes out; the bytes themselves are copied as given.
  ders.forEach((der, i) => {
    parseCertificate(der, `certificate ${i + 1}`);
  });
  const oid = (value: string) => new Uint8Array(new asn1js.ObjectIdentifier({ value }).toBER(false));
  const signedData = tlv(0x30, [
    Uint8Array.from([0x02, 0x01, 0x01]), // version 1
    Uint8Array.from([0x31, 0x00]), // digestAlgorithms: none
    tlv(0x30, [oid(ID_DATA)]), // encapContentInfo, no eContent
    tlv(0xa0, ders), // certificates [0] IMPLICIT
    Uint8Array.from([0x31, 0x00]), // signerInfos: none
  ]);
  return tlv(0x30, [oid(ID_SIGNED_DATA), tlv(0xa0, [signedData])]);
}

/** One DER element: the tag, the definite length and the concatenated contents. */
function tlv(tag: number, contents: readonly Uint8Array[]): Uint8Array {
  const length = contents.reduce((sum, part) => sum + part.byteLength, 0);
  const lengthBytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) lengthBytes.unshift(rest % 256);
  const header = length < 0x80 ? [tag, length] : [tag, 0x80 | lengthBytes.length, ...lengthBytes];
  return new Uint8Array(Buffer.concat([Uint8Array.from(header), ...contents]));
}

function parseCertificate(der: Uint8Array, what: string): void {
  const element = parseDer(der, what);
  try {
    new pkijs.Certificate({ schema: element });
  } catch (err) {
    throw new Pkcs7Error(`${what}: not an X.509 certificate (${(err as Error).message})`);
  }
}

/**
 * The certificates of a certs-only PKCS#7 (DER or BER), each as its exact bytes, in the order sent. Refuses
 * anything else: not a ContentInfo, not SignedData, a signer (a certs-only response has none), content
 * inside, no certificate, an entry that is not an X.509 certificate, bytes after the end.
 */
export function readCertsOnly(der: Uint8Array): Uint8Array[] {
  const what = "certs-only PKCS#7";
  const root = parseDer(der, what);
  let contentInfo: pkijs.ContentInfo;
  try {
    contentInfo = new pkijs.ContentInfo({ schema: root });
  } catch (err) {
    throw new Pkcs7Error(`${what}: not a CMS ContentInfo (${(err as Error).message})`);
  }
  if (contentInfo.contentType !== ID_SIGNED_DATA) {
    throw new Pkcs7Error(`${what}: content type is ${contentInfo.contentType}, not signedData`);
  }
  let signed: pkijs.SignedData;
  try {
    signed = new pkijs.SignedData({ schema: contentInfo.content });
  } catch (err) {
    throw new Pkcs7Error(`${what}: malformed SignedData (${(err as Error).message})`);
  }
  if (signed.signerInfos.length > 0) {
    throw new Pkcs7Error(`${what}: has ${signed.signerInfos.length} signer(s); certs-only has none`);
  }
  if (signed.encapContentInfo.eContent !== undefined) {
    throw new Pkcs7Error(`${what}: carries content; certs-only carries certificates only`);
  }
  // The exact bytes come from the parsed tree (pkijs would re-encode them).
  const fields = (contentInfo.content as asn1js.Sequence).valueBlock.value;
  const set = fields.find((field) => isContextTag(field, 0));
  const entries = (set as asn1js.Constructed | undefined)?.valueBlock.value ?? [];
  if (entries.length === 0) throw new Pkcs7Error(`${what}: holds no certificate`);
  return entries.map((entry, i) => {
    if (!(entry instanceof asn1js.Sequence)) {
      throw new Pkcs7Error(
        `${what}: entry ${i + 1} is not an X.509 certificate (an attribute or other format)`,
      );
    }
    const bytes = new Uint8Array(entry.valueBeforeDecodeView);
    parseCertificate(bytes, `${what}: certificate ${i + 1}`);
    return bytes;
  });
}

/** Base64 of the DER in lines of 64 characters with a trailing newline (RFC 8951 §3.2: base64, no armor). */
export function toBase64Body(der: Uint8Array): string {
  return Buffer.from(der)
    .toString("base64")
    .replace(/.{1,64}/g, "$&\n");
}

/**
 * The DER of a base64 body: whitespace and line breaks anywhere, and a PEM armor around it, are tolerated
 * (RFC 8951 §3.2); any other character, bad padding or an empty body is an error.
 */
export function fromBase64Body(text: string): Uint8Array {
  let body = text;
  const armored = /-----BEGIN ([A-Z0-9 #]+)-----([\s\S]*?)-----END \1-----/.exec(text);
  if (armored) body = armored[2] ?? "";
  else if (text.includes("-----")) throw new Pkcs7Error("base64 body: a PEM armor that is not closed");
  const compact = body.replace(/\s+/g, "");
  if (compact === "") throw new Pkcs7Error("base64 body: empty");
  const bad = /[^A-Za-z0-9+/=]/.exec(compact);
  if (bad) {
    throw new Pkcs7Error(`base64 body: character ${JSON.stringify(bad[0])} is not base64`);
  }
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) {
    throw new Pkcs7Error("base64 body: bad length or padding");
  }
  return new Uint8Array(Buffer.from(compact, "base64"));
}

/** Dotted OID, first arc 0..2, second below 40 under 0 and 1 (X.660). */
function checkOid(oid: string): void {
  const match = /^([0-2])\.(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/.exec(oid);
  if (!match || (Number(match[1]) < 2 && Number(match[2]) >= 40)) {
    throw new Pkcs7Error(`"${oid}" is not an object identifier`);
  }
}

/** CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID, here every one an OBJECT IDENTIFIER (RFC 7030 §4.5.2). */
export function csrAttrs(oids: readonly string[]): Uint8Array {
  for (const oid of oids) checkOid(oid);
  const seq = new asn1js.Sequence({ value: oids.map((value) => new asn1js.ObjectIdentifier({ value })) });
  return new Uint8Array(seq.toBER(false));
}

/**
 * The OIDs of a CsrAttrs: each bare OBJECT IDENTIFIER, and the type of each Attribute (`SEQUENCE { type,
 * SET OF values }`, e.g. extensionRequest listing the extensions wanted), in order.
 */
export function readCsrAttrs(der: Uint8Array): string[] {
  const what = "CsrAttrs";
  const root = parseDer(der, what);
  if (!(root instanceof asn1js.Sequence)) throw new Pkcs7Error(`${what}: not a SEQUENCE`);
  return root.valueBlock.value.map((item, i) => {
    if (item instanceof asn1js.ObjectIdentifier) return item.valueBlock.toString();
    const first = item instanceof asn1js.Sequence ? item.valueBlock.value[0] : undefined;
    if (first instanceof asn1js.ObjectIdentifier) return first.valueBlock.toString();
    throw new Pkcs7Error(`${what}: entry ${i + 1} is neither an OBJECT IDENTIFIER nor an Attribute`);
  });
}
