// W3C trace context through the gateway: the upstream gets the client's trace continued under a new span (its
// tracestate with it), or a fresh valid traceparent when the client sent none or an invalid one; the access log
// line carries the trace id. HTTP/1.1 and HTTP/2 alike.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import { waitForLine } from "../helpers/log-lines.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

describe("W3C trace context", () => {
  const tmp = tempDir();
  let echo: EchoUpstream;
  let gw: GatewayProcess;

  before(async () => {
    await ensureDemoPki(tmp.dir);
    echo = await startEchoUpstream();
    const config: ConfigInput = {
      listeners: [
        {
          name: "main",
          port: 0,
          clientAuth: "application",
          certificates: [{ cert: "server.crt", key: "server.key" }],
          trustStores: ["devices"],
        },
      ],
      trustStores: [{ name: "devices", ca: ["ca-chain.crt"] }],
      services: [{ name: "echo", targets: [echo.url] }],
      routes: [
        { name: "echo", hosts: ["mtls.auth.local.com"], paths: ["/echo"], service: "echo", public: true },
      ],
      log: { access: true },
    };
    gw = await startGateway(tmp.dir, config);
  });

  after(async () => {
    await gw?.stop();
    await echo?.close();
    tmp.cleanup();
  });

  /** One request through the gateway with `headers`: the headers the upstream saw. */
  async function upstreamHeaders(
    headers: string[],
    http: "1.1" | "2" = "1.1",
  ): Promise<Record<string, string>> {
    const r = await curl({
      port: gw.ports.main ?? 0,
      dir: tmp.dir,
      http,
      args: headers.flatMap((h) => ["-H", h]),
    });
    assert.equal(r.status, 200, r.body);
    return r.json<{ headers: Record<string, string> }>().headers;
  }

  for (const http of ["1.1", "2"] as const) {
    test(`HTTP/${http}: a valid traceparent is continued (same trace, a new span) with its tracestate`, async () => {
      const seen = await upstreamHeaders(
        [`traceparent: 00-${TRACE}-${SPAN}-01`, "tracestate: rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"],
        http,
      );
      const [, traceId, spanId, flags] = TRACEPARENT.exec(seen.traceparent ?? "") ?? [];
      assert.equal(traceId, TRACE, seen.traceparent);
      assert.ok(spanId && spanId !== SPAN && spanId !== "0".repeat(16), "a span id of the gateway's own");
      assert.equal(flags, "01");
      assert.equal(seen.tracestate, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
      const access = await waitForLine(
        gw,
        (l) => l.msg === "request" && l.traceId === TRACE && l.status === 200,
        "with the client's trace id",
      );
      assert.equal(access.route, "echo");
    });
  }

  test("no traceparent: a new valid one (random trace id, sampled), and the access line has its trace id", async () => {
    const seen = await upstreamHeaders([]);
    const [, traceId, spanId, flags] = TRACEPARENT.exec(seen.traceparent ?? "") ?? [];
    assert.ok(traceId && traceId !== "0".repeat(32) && traceId !== TRACE, seen.traceparent);
    assert.ok(spanId && spanId !== "0".repeat(16));
    assert.equal(flags, "01");
    assert.equal(seen.tracestate, undefined);
    await waitForLine(gw, (l) => l.msg === "request" && l.traceId === traceId, "with the new trace id");
    const other = await upstreamHeaders([]);
    assert.notEqual(TRACEPARENT.exec(other.traceparent ?? "")?.[1], traceId, "every request its own trace");
  });

  test("an invalid traceparent is replaced by a new trace, and its tracestate is dropped", async () => {
    for (const bad of [
      `00-${"0".repeat(32)}-${SPAN}-01`,
      "00-not-a-trace-01",
      `00-${TRACE.toUpperCase()}-${SPAN}-01`,
    ]) {
      const seen = await upstreamHeaders([`traceparent: ${bad}`, "tracestate: rojo=1"]);
      const [, traceId, , flags] = TRACEPARENT.exec(seen.traceparent ?? "") ?? [];
      assert.ok(traceId && traceId !== TRACE && traceId !== "0".repeat(32), seen.traceparent);
      assert.equal(flags, "01");
      assert.equal(seen.tracestate, undefined, "no tracestate without a valid traceparent");
    }
  });

  test("two traceparent headers are invalid: a new trace, one traceparent upstream", async () => {
    const seen = await upstreamHeaders([
      `traceparent: 00-${TRACE}-${SPAN}-01`,
      `traceparent: 00-${TRACE}-${SPAN}-00`,
    ]);
    assert.match(seen.traceparent ?? "", TRACEPARENT, "a single valid header, not a list");
    assert.notEqual(TRACEPARENT.exec(seen.traceparent ?? "")?.[1], TRACE);
  });

  test("a malformed tracestate with a valid traceparent: the trace continues, the tracestate does not", async () => {
    const seen = await upstreamHeaders([`traceparent: 00-${TRACE}-${SPAN}-00`, "tracestate: Bad Key=1"]);
    assert.equal(TRACEPARENT.exec(seen.traceparent ?? "")?.[1], TRACE);
    assert.equal(
      TRACEPARENT.exec(seen.traceparent ?? "")?.[3],
      "00",
      "the sampled flag as the client set it",
    );
    assert.equal(seen.tracestate, undefined);
  });
});
