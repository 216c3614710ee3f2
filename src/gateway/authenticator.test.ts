// The Authenticator's reporting: a use of notBeforeGrace is counted per request and logged once per
// connection (not per cached evaluation, nor for the listener-level verdict at admission).
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import * as c from "../identity/testing/corpus.ts";
import * as r from "../identity/testing/corpus-rules.ts";
import type { AuthPolicy } from "../identity/types.ts";
import { ConnectionDecisions, type ConnectionState } from "../tls/connection-state.ts";
import { Authenticator } from "./authenticator.ts";
import { createLogger } from "./log.ts";
import { GatewayMetrics } from "./metrics.ts";

const GRACE_LOG = "certificate accepted before its notBefore (notBeforeGrace)";

function setup() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n"))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const stores = [c.stores.acme, r.ruleStores.grace];
  const authenticator = new Authenticator(stores, {
    revocation: undefined,
    logger: createLogger("info", sink),
    metrics,
  });
  const uses = async (): Promise<number> => {
    const metric = await metrics.notBeforeGraceUses.get();
    return metric.values.find((v) => v.labels.store === "grace")?.value ?? 0;
  };
  return { lines, authenticator, uses };
}

function connection(): ConnectionState {
  return {
    identity: c.identityOf(r.slightlyEarly.cert, [c.int.cert]),
    decisions: new ConnectionDecisions(),
    authenticated: true,
    refusedInARow: 0,
    peer: "127.0.0.1",
    source: "address 127.0.0.1",
  };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

test("notBeforeGrace: every request served with grace is counted; each connection logs it once", async () => {
  const { lines, authenticator, uses } = setup();
  const listener: AuthPolicy = { id: "listener:app#1", trustStores: [r.ruleStores.grace] };
  const route: AuthPolicy = { id: "route:early", trustStores: [r.ruleStores.grace] };
  const first = connection();
  // Admission (the listener's verdict) is not a use: no request was served.
  assert.ok(authenticator.decide(first.identity, listener, c.NOW).allow);
  for (let i = 0; i < 3; i++) {
    const d = authenticator.decideForConnection(first, route, new Date(c.NOW.getTime() + i * 1_000));
    assert.ok(!(d instanceof Promise) && d.allow);
  }
  for (const other of [connection(), connection()]) {
    assert.ok(authenticator.decide(other.identity, listener, c.NOW).allow);
    const d = authenticator.decideForConnection(other, route, c.NOW);
    assert.ok(!(d instanceof Promise) && d.allow, "served from the decision cache");
  }
  // Once the leaf's notBefore has passed, grace is no longer in use.
  const later = new Date(r.slightlyEarly.cert.notBefore.getTime() + 1_000);
  assert.ok((authenticator.decideForConnection(first, route, later) as { allow: boolean }).allow);
  await flush();
  assert.equal(await uses(), 5, "portcullis_not_before_grace_uses_total counts the five requests");
  const logged = lines.filter((l) => l.msg === GRACE_LOG);
  assert.equal(logged.length, 3, `one line per connection:\n${JSON.stringify(logged)}`);
  assert.equal(logged[0]?.store, "grace");
  assert.equal(typeof logged[0]?.graceUsedMs, "number");
  authenticator.close();
});
