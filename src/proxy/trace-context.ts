// W3C Trace Context (https://www.w3.org/TR/trace-context/) for proxied requests: the gateway is one hop of the
// client's trace. A valid incoming `traceparent` is continued (same trace id, the incoming span as parent, a new
// span id of the gateway's own); an invalid or absent one starts a new trace. `tracestate` goes on only with a
// valid `traceparent`, and only when it is well-formed. Pure functions, plus a pool of random bytes for ids.
import { randomFillSync } from "node:crypto";

export interface Traceparent {
  /** Two lower-case hex digits; "00" is the only version this code writes. */
  readonly version: string;
  /** 32 lower-case hex digits, not all zero. */
  readonly traceId: string;
  /** 16 lower-case hex digits, not all zero: the span of the sender. */
  readonly parentId: string;
  /** Two lower-case hex digits; bit 0 is "sampled". */
  readonly flags: string;
}

/** What the gateway sends upstream for one request. */
export interface TraceContext {
  readonly traceId: string;
  /** The gateway's own span: the upstream's parent. */
  readonly spanId: string;
  /** The client's span when its trace was continued; undefined for a new trace. */
  readonly parentSpanId: string | undefined;
  readonly traceparent: string;
  /** The client's tracestate, when its traceparent was valid and it is well-formed. */
  readonly tracestate: string | undefined;
}

type HeaderValue = string | string[] | undefined;

const VERSION_00 = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
/** A later version: its first four fields read as version 00's, then only `-` and more may follow. */
const LATER_VERSION = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);

/** A single header value: several field lines (an array, or Node's `a, b` join) are invalid for traceparent. */
function single(value: HeaderValue): string | undefined {
  if (Array.isArray(value)) return value.length === 1 ? value[0] : undefined;
  return value;
}

/** Parses a `traceparent` header; undefined when invalid (then a new trace is started). */
export function parseTraceparent(header: HeaderValue): Traceparent | undefined {
  const value = single(header)?.trim();
  if (value === undefined || value.length < 55) return undefined;
  const v00 = VERSION_00.exec(value);
  const match = v00 ? ["", "00", v00[1], v00[2], v00[3]] : LATER_VERSION.exec(value);
  if (!match) return undefined;
  const [, version = "", traceId = "", parentId = "", flags = ""] = match;
  // "ff" is forbidden; a "00" with anything after its flags did not match VERSION_00 and is invalid.
  if (version === "ff" || (version === "00" && !v00)) return undefined;
  if (traceId === ZERO_TRACE || parentId === ZERO_SPAN) return undefined;
  return { version, traceId, parentId, flags };
}

const MAX_TRACESTATE_MEMBERS = 32;
const KEY = /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$/;
// Printable ASCII but `,` and `=`; spaces inside, never at the end.
const VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/**
 * A `tracestate` header (its field lines joined by commas) if well-formed: at most 32 list members of `key=value`,
 * keys unique; empty members are dropped. Undefined when absent, empty or malformed (then none is sent).
 */
export function parseTracestate(header: HeaderValue): string | undefined {
  const value = Array.isArray(header) ? header.join(",") : header;
  if (value === undefined) return undefined;
  const members: string[] = [];
  const keys = new Set<string>();
  for (const raw of value.split(",")) {
    const member = raw.trim();
    if (member === "") continue;
    const eq = member.indexOf("=");
    if (eq <= 0) return undefined;
    const key = member.slice(0, eq);
    if (!KEY.test(key) || !VALUE.test(member.slice(eq + 1)) || keys.has(key)) return undefined;
    keys.add(key);
    members.push(member);
  }
  if (members.length === 0 || members.length > MAX_TRACESTATE_MEMBERS) return undefined;
  return members.join(",");
}

export function formatTraceparent(traceId: string, spanId: string, flags: string): string {
  return `00-${traceId}-${spanId}-${flags}`;
}

/** Random bytes drawn from a pool refilled 4 KiB at a time: one system call per ~170 requests, not two each. */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function randomHex(bytes: number): string {
  for (;;) {
    if (poolOffset + bytes > pool.length) {
      randomFillSync(pool);
      poolOffset = 0;
    }
    const hex = pool.toString("hex", poolOffset, poolOffset + bytes);
    poolOffset += bytes;
    // All zeroes is an invalid id (probability 2^-64 or less): drawn again.
    if (!/^0+$/.test(hex)) return hex;
  }
}

/** A new span id: 16 hex digits, not all zero. */
export function newSpanId(): string {
  return randomHex(8);
}

/** A new trace id: 32 random hex digits, not all zero. */
export function newTraceId(): string {
  return randomHex(16);
}

/**
 * The trace context for the upstream request, from the client's `traceparent` and `tracestate`: the client's trace
 * continued under a new span, or a new trace (random id, flags `01`: sampled) when its traceparent is invalid or
 * absent. A later version's header is continued as version 00 with only the sampled flag kept.
 */
export function nextTraceContext(headers: {
  readonly traceparent?: HeaderValue;
  readonly tracestate?: HeaderValue;
  readonly [name: string]: HeaderValue;
}): TraceContext {
  const spanId = newSpanId();
  const incoming = parseTraceparent(headers.traceparent);
  if (!incoming) {
    const traceId = newTraceId();
    return {
      traceId,
      spanId,
      parentSpanId: undefined,
      traceparent: formatTraceparent(traceId, spanId, "01"),
      tracestate: undefined,
    };
  }
  const flags =
    incoming.version === "00"
      ? incoming.flags
      : (Number.parseInt(incoming.flags, 16) & 0x01).toString(16).padStart(2, "0");
  return {
    traceId: incoming.traceId,
    spanId,
    parentSpanId: incoming.parentId,
    traceparent: formatTraceparent(incoming.traceId, spanId, flags),
    tracestate: parseTracestate(headers.tracestate),
  };
}
