// PKCS#10 certification requests (RFC 2986) as EST enrollment receives them (RFC 7030 §4.2, RFC 8951):
// the request body read as base64 or PEM, a strict DER parse of the request into the fields the
// enrollment policy judges (subject, SANs, requested extensions, key), and the proof of possession (the
// request's signature checked with its own public key). Nothing here throws anything but CsrError on
// bad input: a device's bytes are never trusted to be well formed.
import { createPublicKey, type KeyObject, constants as nodeConstants, verify } from "node:crypto";
import {
  type PublicKeyInfo,
  publicKeyInfoOf,
  type SignatureAlgorithm,
  signatureAlgorithmOf,
} from "../identity/algorithms.ts";
import {
  children,
  contents,
  ctx,
  DerError,
  decodeBoolean,
  decodeOid,
  decodeSmallInt,
  encoding,
  readTlv,
  TAG,
  type Tlv,
} from "../identity/der.ts";
import { formatName, OID_COMMON_NAME, parseName } from "../identity/dn.ts";
import { OID } from "../identity/extensions.ts";
import { decodeGeneralNames } from "../identity/general-names.ts";

export class CsrError extends Error {
  override name = "CsrError";
  /** "malformed": not a PKCS#10 request; "proof_of_possession": its signature does not prove the key. */
  readonly kind: "malformed" | "proof_of_possession";

  constructor(kind: "malformed" | "proof_of_possession", message: string) {
    super(message);
    this.kind = kind;
  }
}

export interface CsrSubjectAltNames {
  readonly uris: string[];
  readonly dns: string[];
  readonly emails: string[];
  readonly ips: string[];
  /** How many entries of other kinds (directoryName, otherName, registeredID...) the request holds. */
  readonly other: number;
}

export interface CertificationRequest {
  /** The whole request as received. */
  readonly der: Uint8Array;
  /** RFC 4514 one-line form, most specific RDN first, as certificates' subjects are printed: "CN=device-042". */
  readonly subject: string;
  /** The exact DER of the subject Name. */
  readonly subjectDer: Uint8Array;
  /** Every commonName of the subject, in encoding order. */
  readonly commonNames: string[];
  /** subjectAltName of the extensionRequest attribute; all empty when none was requested. */
  readonly san: CsrSubjectAltNames;
  /** OIDs of every extension in the extensionRequest attribute, in order. */
  readonly requestedExtensions: string[];
  /** The SubjectPublicKeyInfo DER, exactly as in the request. */
  readonly spki: Uint8Array;
  readonly publicKey: PublicKeyInfo;
  /** The algorithm the request claims to be signed with. */
  readonly signatureAlgorithm: SignatureAlgorithm;
}

const PEM_REQUEST =
  /^\s*-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n([\s\S]*?)-----END (NEW )?CERTIFICATE REQUEST-----\s*$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14";

function malformed(message: string): CsrError {
  return new CsrError("malformed", message);
}

function base64Der(text: string, what: string): Uint8Array {
  const b64 = text.replace(/\s+/g, "");
  if (b64 === "") throw malformed(`${what} is empty`);
  if (!BASE64.test(b64) || b64.length % 4 !== 0) {
    throw malformed(`${what} is not valid base64 (RFC 4648 alphabet, padded to a multiple of 4 characters)`);
  }
  return new Uint8Array(Buffer.from(b64, "base64"));
}

/**
 * The DER of an EST request body: base64 of the DER, line breaks and other whitespace tolerated (RFC 8951
 * §3: base64 is the encoding whatever Content-Transfer-Encoding says), or one PEM CERTIFICATE REQUEST
 * block (as `openssl req` writes it, some clients send the file). Binary DER is refused.
 */
export function readCsrBody(body: Buffer): Uint8Array {
  if (body.length === 0) throw malformed("the request body is empty: expected a base64 PKCS#10 request");
  if (body[0] === 0x30 && body.length > 1 && (body[1] ?? 0) >= 0x80) {
    throw malformed(
      "the request body looks like binary DER: EST requires the PKCS#10 request in base64 (RFC 8951)",
    );
  }
  const text = body.toString("latin1");
  if (text.includes("-----BEGIN")) {
    const blocks = text.split("-----BEGIN ").length - 1;
    if (blocks !== 1)
      throw malformed(
        `the request body holds ${blocks} PEM blocks: expected exactly one CERTIFICATE REQUEST`,
      );
    const pem = PEM_REQUEST.exec(text);
    if (!pem) {
      throw malformed(
        "the request body's PEM is not exactly one CERTIFICATE REQUEST block with nothing else around it",
      );
    }
    if ((pem[1] ?? "") !== (pem[3] ?? "")) throw malformed("the PEM block's BEGIN and END labels differ");
    return base64Der(pem[2] ?? "", "the PEM CERTIFICATE REQUEST block");
  }
  return base64Der(text, "the request body");
}

/** The three parts of a CertificationRequest, whose outer shape is checked. */
function outerParts(der: Uint8Array): { info: Tlv; sigAlg: Tlv; signature: Tlv } {
  const req = readTlv(der, 0);
  if (req.tag !== TAG.sequence) throw new DerError("not a DER SEQUENCE");
  if (req.end !== der.length)
    throw new DerError(`${der.length - req.end} trailing byte(s) after the request`);
  const [info, sigAlg, signature, extra] = children(der, req);
  if (!info || !sigAlg || !signature || extra) {
    throw new DerError("CertificationRequest must hold exactly info, signatureAlgorithm and signature");
  }
  if (info.tag !== TAG.sequence) throw new DerError("certificationRequestInfo is not a SEQUENCE");
  if (signature.tag !== TAG.bitString || signature.end === signature.start || der[signature.start] !== 0) {
    throw new DerError("signature is not a BIT STRING of whole bytes");
  }
  return { info, sigAlg, signature };
}

/** Extensions ::= SEQUENCE OF Extension, as the single value of the extensionRequest attribute (RFC 2985). */
function readRequestedExtensions(der: Uint8Array, values: Tlv): Map<string, Uint8Array> {
  const [seq, extra] = children(der, values);
  if (!seq || extra || seq.tag !== TAG.sequence) {
    throw new DerError("extensionRequest must hold exactly one Extensions SEQUENCE");
  }
  const byOid = new Map<string, Uint8Array>();
  for (const ext of children(der, seq)) {
    const fields = ext.tag === TAG.sequence ? children(der, ext) : [];
    const [idTlv, second, third] = fields;
    if (!idTlv || !second || fields.length > 3) throw new DerError("malformed requested extension");
    const oid = decodeOid(der, idTlv);
    if (third !== undefined) decodeBoolean(der, second);
    const value = third ?? second;
    if (value.tag !== TAG.octetString)
      throw new DerError(`requested extension ${oid}: extnValue is not an OCTET STRING`);
    if (byOid.has(oid)) throw new DerError(`requested extension ${oid} appears twice`);
    byOid.set(oid, contents(der, value));
  }
  return byOid;
}

/** Attributes ::= SET OF Attribute; Attribute ::= SEQUENCE { type OID, values SET OF ANY }. */
function readAttributes(der: Uint8Array, attrs: Tlv | undefined): Map<string, Uint8Array> {
  if (attrs === undefined) return new Map();
  let extensions: Map<string, Uint8Array> | undefined;
  for (const attr of children(der, attrs)) {
    const [type, values, extra] = attr.tag === TAG.sequence ? children(der, attr) : [];
    if (!type || !values || extra || values.tag !== TAG.set) throw new DerError("malformed attribute");
    const oid = decodeOid(der, type);
    if (oid !== OID_EXTENSION_REQUEST) continue;
    if (extensions) throw new DerError("the extensionRequest attribute appears twice");
    extensions = readRequestedExtensions(der, values);
  }
  return extensions ?? new Map();
}

function parseFields(der: Uint8Array): CertificationRequest {
  const { info, sigAlg } = outerParts(der);
  const [version, subject, spki, attributes, extra] = children(der, info);
  if (!version || !subject || !spki) throw new DerError("certificationRequestInfo is truncated");
  if (
    version.tag !== TAG.integer ||
    decodeSmallInt(der, version) !== 0 ||
    version.end - version.start !== 1
  ) {
    throw new DerError("version is not v1 (0)");
  }
  if (subject.tag !== TAG.sequence) throw new DerError("subject is not a Name");
  if (spki.tag !== TAG.sequence) throw new DerError("subjectPKInfo is not a SEQUENCE");
  // RFC 2986 makes attributes [0] mandatory; a few encoders omit it when empty, which reads the same.
  if (extra || (attributes !== undefined && attributes.tag !== ctx(0, true))) {
    throw new DerError("unexpected element after subjectPKInfo (expected attributes [0])");
  }
  const subjectDer = encoding(der, subject);
  const rdns = parseName(subjectDer);
  const publicKey = publicKeyInfoOf(der, spki);
  const spkiDer = encoding(der, spki);
  try {
    createPublicKey({ key: Buffer.from(spkiDer), format: "der", type: "spki" });
  } catch (err) {
    // A key type OpenSSL does not know is for the key policy to name; a broken known key is malformed.
    if (["rsa", "ec", "ed25519", "ed448"].includes(publicKey.type)) {
      throw new DerError(`the public key does not load (${(err as Error).message})`);
    }
  }
  const extensions = readAttributes(der, attributes);
  const sanDer = extensions.get(OID.subjectAltName);
  const names = sanDer ? decodeGeneralNames(sanDer) : [];
  const of = (kind: string): string[] => names.filter((n) => n.kind === kind).map((n) => n.value);
  return {
    der,
    subject: formatName(rdns),
    subjectDer,
    commonNames: rdns
      .flat()
      .flatMap((a) => (a.oid === OID_COMMON_NAME && a.value !== undefined ? [a.value] : [])),
    san: {
      uris: of("uri"),
      dns: of("dns"),
      emails: of("email"),
      ips: of("ip"),
      other: names.filter((n) => n.kind === "dn" || n.kind === "other").length,
    },
    requestedExtensions: [...extensions.keys()],
    spki: spkiDer,
    publicKey,
    signatureAlgorithm: signatureAlgorithmOf(der, sigAlg),
  };
}

/** A strict DER parse of a PKCS#10 request; any defect is a CsrError of kind "malformed". */
export function parseCsr(der: Uint8Array): CertificationRequest {
  // A copy: the caller's buffer may be reused, the request outlives it.
  const bytes = new Uint8Array(der);
  try {
    return parseFields(bytes);
  } catch (err) {
    if (err instanceof DerError) throw malformed(`malformed certificate request: ${err.message}`);
    throw malformed(`malformed certificate request: ${(err as Error).message}`);
  }
}

const WEAK_HASHES: Readonly<Record<string, string>> = { md2: "MD2", md4: "MD4", md5: "MD5", sha1: "SHA-1" };
const STRONG_HASHES: ReadonlySet<string> = new Set(["sha256", "sha384", "sha512"]);
const DIGEST_OIDS: Readonly<Record<string, string>> = {
  "1.3.14.3.2.26": "sha1",
  "2.16.840.1.101.3.4.2.4": "sha224",
  "2.16.840.1.101.3.4.2.1": "sha256",
  "2.16.840.1.101.3.4.2.2": "sha384",
  "2.16.840.1.101.3.4.2.3": "sha512",
};
const OID_MGF1 = "1.2.840.113549.1.1.8";

interface PssParams {
  hash: string | undefined;
  mgfHash: string | undefined;
  saltLength: number;
}

function digestOf(der: Uint8Array, alg: Tlv): string | undefined {
  const [oid] = alg.tag === TAG.sequence ? children(der, alg) : [];
  if (!oid) throw new DerError("bad AlgorithmIdentifier in RSASSA-PSS parameters");
  return DIGEST_OIDS[decodeOid(der, oid)];
}

/** RSASSA-PSS-params (RFC 4055 §3.1) with their SHA-1 / MGF1-SHA-1 / 20-byte-salt defaults. */
function pssParams(der: Uint8Array, sigAlg: Tlv): PssParams {
  const out: PssParams = { hash: "sha1", mgfHash: "sha1", saltLength: 20 };
  const [, params] = children(der, sigAlg);
  if (params === undefined) return out;
  if (params.tag !== TAG.sequence) throw new DerError("RSASSA-PSS parameters are not a SEQUENCE");
  for (const field of children(der, params)) {
    const inner = readTlv(der, field.start, field.end);
    if (field.tag === ctx(0, true)) out.hash = digestOf(der, inner);
    else if (field.tag === ctx(1, true)) {
      const [mgf, mgfParams] = inner.tag === TAG.sequence ? children(der, inner) : [];
      if (!mgf || decodeOid(der, mgf) !== OID_MGF1 || !mgfParams) out.mgfHash = undefined;
      else out.mgfHash = digestOf(der, mgfParams);
    } else if (field.tag === ctx(2, true)) {
      if (inner.tag !== TAG.integer) throw new DerError("RSASSA-PSS saltLength is not an INTEGER");
      out.saltLength = decodeSmallInt(der, inner);
    } else if (field.tag === ctx(3, true)) {
      if (inner.tag !== TAG.integer || decodeSmallInt(der, inner) !== 1) {
        throw new DerError("RSASSA-PSS trailerField must be 1");
      }
    } else throw new DerError("unknown field in RSASSA-PSS parameters");
  }
  return out;
}

function popError(message: string): CsrError {
  return new CsrError("proof_of_possession", message);
}

type VerifyPlan = {
  digest: string | null;
  key: KeyObject | { key: KeyObject; padding: number; saltLength?: number };
};

/** How node:crypto checks a signature of `alg` with `key`, or a CsrError saying why it will not. */
function verifyPlan(der: Uint8Array, sigAlgTlv: Tlv, alg: SignatureAlgorithm, key: KeyObject): VerifyPlan {
  const keyType = key.asymmetricKeyType;
  const weak = alg.hash === undefined ? undefined : WEAK_HASHES[alg.hash];
  if (weak !== undefined) {
    throw popError(`the request is signed with ${alg.name}: ${weak} signatures are not accepted`);
  }
  const needKey = (wanted: string[], what: string) => {
    if (!wanted.includes(keyType ?? "")) {
      throw popError(
        `the request is signed with ${alg.name} but its public key is ${keyType ?? "unknown"}, not ${what}`,
      );
    }
  };
  switch (alg.name) {
    case "sha256WithRSAEncryption":
    case "sha384WithRSAEncryption":
    case "sha512WithRSAEncryption":
      needKey(["rsa"], "RSA");
      return { digest: alg.hash ?? null, key: { key, padding: nodeConstants.RSA_PKCS1_PADDING } };
    case "ecdsa-with-SHA256":
    case "ecdsa-with-SHA384":
    case "ecdsa-with-SHA512":
      needKey(["ec"], "EC");
      return { digest: alg.hash ?? null, key };
    case "Ed25519":
      needKey(["ed25519"], "Ed25519");
      return { digest: null, key };
    case "rsassa-pss": {
      needKey(["rsa", "rsa-pss"], "RSA");
      const pss = pssParams(der, sigAlgTlv);
      if (pss.hash === undefined || !STRONG_HASHES.has(pss.hash)) {
        const weakPss = pss.hash === undefined ? undefined : WEAK_HASHES[pss.hash];
        throw popError(
          weakPss
            ? `the request is signed with RSASSA-PSS over ${weakPss}: ${weakPss} signatures are not accepted`
            : `the request is signed with RSASSA-PSS over ${pss.hash ?? "an unknown hash"}, which is not accepted`,
        );
      }
      if (pss.mgfHash !== pss.hash) {
        throw popError(
          `the request's RSASSA-PSS parameters use a mask generation other than MGF1 with ${pss.hash}`,
        );
      }
      return {
        digest: pss.hash,
        key: { key, padding: nodeConstants.RSA_PKCS1_PSS_PADDING, saltLength: pss.saltLength },
      };
    }
    default:
      throw popError(`the request is signed with ${alg.name}, which is not accepted`);
  }
}

/**
 * The proof of possession: the request's signature over certificationRequestInfo, checked with the
 * request's own public key. Only the algorithms of the algorithm policy are accepted (ECDSA and RSA with
 * SHA-256/384/512, RSASSA-PSS, Ed25519); SHA-1 and MD5 signatures are refused however valid.
 */
export async function verifyProofOfPossession(csr: CertificationRequest): Promise<void> {
  const der = csr.der;
  let plan: VerifyPlan;
  let data: Uint8Array;
  let signature: Uint8Array;
  try {
    const { info, sigAlg, signature: sig } = outerParts(der);
    const key = createPublicKey({ key: Buffer.from(csr.spki), format: "der", type: "spki" });
    plan = verifyPlan(der, sigAlg, csr.signatureAlgorithm, key);
    data = encoding(der, info);
    signature = der.subarray(sig.start + 1, sig.end);
  } catch (err) {
    if (err instanceof CsrError) throw err;
    if (err instanceof DerError) throw malformed(`malformed certificate request: ${err.message}`);
    throw popError(`the request's public key cannot verify signatures (${(err as Error).message})`);
  }
  let valid: boolean;
  try {
    valid = verify(plan.digest, data, plan.key, signature);
  } catch (err) {
    throw popError(`the request's signature cannot be checked (${(err as Error).message})`);
  }
  if (!valid) {
    throw popError(
      `the request's ${csr.signatureAlgorithm.name} signature does not verify with its own public key: the requester did not prove possession of the private key`,
    );
  }
}
