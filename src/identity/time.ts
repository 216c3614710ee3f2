// X.509 Time (RFC 5280 §4.1.2.5): UTCTime YYMMDDHHMMSSZ (years 1950-2049) or GeneralizedTime
// YYYYMMDDHHMMSSZ, in UTC with seconds and without fractions, as the profile requires.
import { DerError, TAG, type Tlv } from "./der.ts";

const UTC_TIME = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const GENERALIZED_TIME = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

export function decodeTime(buf: Uint8Array, tlv: Tlv): Date {
  const text = Buffer.from(buf.buffer, buf.byteOffset + tlv.start, tlv.end - tlv.start).toString("latin1");
  const m = (
    tlv.tag === TAG.utcTime ? UTC_TIME : tlv.tag === TAG.generalizedTime ? GENERALIZED_TIME : undefined
  )?.exec(text);
  if (!m) throw new DerError(`bad certificate time "${text}"`);
  let year = Number(m[1]);
  if (tlv.tag === TAG.utcTime) year += year < 50 ? 2000 : 1900;
  const [month, day, hour, minute, second] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(ms);
  // Date.UTC rolls 31 February over into March: a time that does not round-trip is not a time.
  if (
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day ||
    hour > 23 ||
    minute > 59 ||
    second > 59
  ) {
    throw new DerError(`bad certificate time "${text}"`);
  }
  if (year < 100) date.setUTCFullYear(year);
  return date;
}

/**
 * `ms` (epoch milliseconds) cut to its whole second: certificate times have one-second resolution and
 * validity is inclusive, so any instant within notAfter's second is still valid (RFC 5280 §4.1.2.5).
 */
export const wholeSecond = (ms: number): number => Math.floor(ms / 1000) * 1000;
