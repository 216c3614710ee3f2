import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  formatTraceparent,
  newSpanId,
  newTraceId,
  nextTraceContext,
  parseTraceparent,
  parseTracestate,
} from "./trace-context.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";
const VALID = `00-${TRACE}-${SPAN}-01`;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

describe("parseTraceparent", () => {
  test("a valid version 00 header", () => {
    assert.deepEqual(parseTraceparent(VALID), { version: "00", traceId: TRACE, parentId: SPAN, flags: "01" });
    assert.equal(parseTraceparent(`00-${TRACE}-${SPAN}-00`)?.flags, "00");
    assert.equal(parseTraceparent(` ${VALID} `)?.traceId, TRACE, "surrounding spaces are trimmed");
    assert.equal(parseTraceparent([VALID])?.traceId, TRACE);
  });

  test("a later version: its first fields are read; more may follow after a dash", () => {
    assert.equal(parseTraceparent(`01-${TRACE}-${SPAN}-01`)?.version, "01");
    assert.equal(parseTraceparent(`cc-${TRACE}-${SPAN}-09-what-the-future-holds`)?.flags, "09");
    assert.equal(parseTraceparent(`cc-${TRACE}-${SPAN}-09what`), undefined);
  });

  test("invalid headers", () => {
    for (const bad of [
      undefined,
      "",
      `ff-${TRACE}-${SPAN}-01`, // forbidden version
      `00-${TRACE}-${SPAN}-01-extra`, // version 00 is exactly 55 characters
      `00-${"0".repeat(32)}-${SPAN}-01`, // zero trace id
      `00-${TRACE}-${"0".repeat(16)}-01`, // zero parent id
      `00-${TRACE.toUpperCase()}-${SPAN}-01`, // upper case
      `00-${TRACE.slice(1)}-${SPAN}-01`,
      `00-${TRACE}-${SPAN}-1`,
      `00_${TRACE}_${SPAN}_01`,
      `0-${TRACE}-${SPAN}-01`,
      `00-${TRACE}-${SPAN}-0g`,
      `${VALID}, ${VALID}`, // two field lines, as Node joins them
      [VALID, VALID],
    ]) {
      assert.equal(parseTraceparent(bad), undefined, String(bad));
    }
  });
});

describe("parseTracestate", () => {
  test("well-formed lists, with empty members dropped and field lines joined", () => {
    assert.equal(
      parseTracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
      "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    );
    assert.equal(parseTracestate(" rojo=1 , ,congo=2 "), "rojo=1,congo=2");
    assert.equal(parseTracestate(["rojo=1", "congo=2"]), "rojo=1,congo=2");
    assert.equal(parseTracestate("tenant@vendor=a b"), "tenant@vendor=a b");
    const many = Array.from({ length: 32 }, (_, i) => `k${i}=v`).join(",");
    assert.equal(parseTracestate(many), many);
  });

  test("malformed lists are dropped whole", () => {
    for (const bad of [
      undefined,
      "",
      " , ",
      "rojo",
      "=1",
      "Rojo=1", // upper-case key
      "rojo=1,rojo=2", // duplicate key
      "rojo=a,b", // "b" is no member
      "rojo=a=b",
      "rojo=a\tb",
      "rojo=\u00e9",
      `${"k".repeat(257)}=1`,
      Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(","),
    ]) {
      assert.equal(parseTracestate(bad), undefined, String(bad));
    }
  });
});

describe("nextTraceContext", () => {
  test("a valid traceparent is continued: same trace and flags, the client's span as parent, a new span", () => {
    const trace = nextTraceContext({ traceparent: VALID, tracestate: "rojo=1" });
    const [, traceId, spanId, flags] = TRACEPARENT.exec(trace.traceparent) ?? [];
    assert.equal(traceId, TRACE);
    assert.notEqual(spanId, SPAN);
    assert.equal(spanId, trace.spanId);
    assert.equal(flags, "01");
    assert.equal(trace.parentSpanId, SPAN);
    assert.equal(trace.traceId, TRACE);
    assert.equal(trace.tracestate, "rojo=1");
    assert.equal(nextTraceContext({ traceparent: `00-${TRACE}-${SPAN}-00` }).traceparent.slice(-2), "00");
  });

  test("a later version is continued as version 00 with only the sampled flag", () => {
    const trace = nextTraceContext({ traceparent: `cc-${TRACE}-${SPAN}-0b-more` });
    assert.match(trace.traceparent, new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
  });

  test("an invalid or absent traceparent starts a new trace, sampled, without the client's tracestate", () => {
    for (const traceparent of [undefined, "garbage", `00-${"0".repeat(32)}-${SPAN}-01`]) {
      const trace = nextTraceContext({ traceparent, tracestate: "rojo=1" });
      const [, traceId, spanId, flags] = TRACEPARENT.exec(trace.traceparent) ?? [];
      assert.equal(traceId, trace.traceId);
      assert.notEqual(traceId, TRACE);
      assert.notEqual(traceId, "0".repeat(32));
      assert.equal(spanId, trace.spanId);
      assert.equal(flags, "01");
      assert.equal(trace.parentSpanId, undefined);
      assert.equal(trace.tracestate, undefined);
    }
  });

  test("a malformed tracestate is left out of a continued trace", () => {
    assert.equal(nextTraceContext({ traceparent: VALID, tracestate: "a=1,a=2" }).tracestate, undefined);
  });

  test("ids are random, the right length, and never repeat across a pool refill", () => {
    const spans = new Set(Array.from({ length: 2000 }, () => newSpanId()));
    const traces = new Set(Array.from({ length: 1000 }, () => newTraceId()));
    assert.equal(spans.size, 2000);
    assert.equal(traces.size, 1000);
    for (const s of spans) assert.match(s, /^[0-9a-f]{16}$/);
    for (const t of traces) assert.match(t, /^[0-9a-f]{32}$/);
    assert.equal(formatTraceparent(TRACE, SPAN, "01"), VALID);
  });
});
