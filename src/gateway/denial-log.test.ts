import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { addressSource, type DenialEvent, DenialLog, withClaimedSubject } from "./denial-log.ts";
import { createLogger } from "./log.ts";

function capture(level = "info") {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split("\n"))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const suppressed: DenialEvent[] = [];
  const logger = createLogger(level, sink);
  const log = new DenialLog(logger, { intervalMs: 1_000, perInterval: 2 }, (e) => suppressed.push(e));
  return { lines, suppressed, log, logger };
}

const flush = () => new Promise((r) => setImmediate(r));

test("each source logs perInterval lines per interval; the rest are counted, then reported", async () => {
  const { lines, suppressed, log } = capture();
  for (let i = 0; i < 10; i++) log.log("address 10.0.0.1", "request denied", { n: i }, 0);
  log.log("address 10.0.0.2", "request denied", { n: 100 }, 500);
  await flush();
  assert.deepEqual(
    lines.map((l) => l.n),
    [0, 1, 100],
    "two lines of the first source, and the second source is not held back by the first",
  );
  assert.equal(suppressed.length, 8);
  log.log("address 10.0.0.1", "connection refused", { n: 11 }, 1_000);
  await flush();
  assert.equal(lines.at(-1)?.n, 11);
  assert.equal(lines.at(-1)?.suppressed, 8, "the next interval's first line says how many were held back");
  assert.equal(lines.at(-1)?.msg, "connection refused");
  log.log("address 10.0.0.1", "request denied", { n: 12 }, 1_001);
  await flush();
  assert.equal(lines.at(-1)?.suppressed, undefined, "reported once");
});

test("clients known by address: IPv4 by address, IPv6 by /64, IPv4-mapped as IPv4", () => {
  assert.equal(addressSource("203.0.113.7"), "address 203.0.113.7");
  assert.equal(addressSource("::ffff:203.0.113.7"), "address ::ffff:203.0.113.7");
  assert.equal(addressSource("2001:db8:1:2:a:b:c:d"), "network 2001:db8:1:2::/64");
  assert.equal(addressSource("2001:db8:1:2::9"), "network 2001:db8:1:2::/64");
  assert.equal(addressSource("2001:0DB8:0001:0002::"), "network 2001:db8:1:2::/64");
  assert.equal(addressSource("::1"), "network 0:0:0:0::/64");
  assert.equal(addressSource("fe80::1%eth0"), "address fe80::1%eth0");
  assert.equal(addressSource(""), "address ");
});

test("configure changes the sampling; perInterval 0 logs nothing but counts everything", async () => {
  const { lines, suppressed, log } = capture();
  log.configure({ intervalMs: 1_000, perInterval: 0 });
  for (let i = 0; i < 3; i++) log.log("s", "handshake failed", {}, 0);
  await flush();
  assert.equal(lines.length, 0);
  assert.deepEqual(suppressed, ["handshake failed", "handshake failed", "handshake failed"]);
});

test("nothing is sampled or counted when info is not logged at all", async () => {
  const { lines, suppressed, log } = capture("warn");
  for (let i = 0; i < 5; i++) log.log("s", "request denied", {}, 0);
  await flush();
  assert.equal(lines.length, 0);
  assert.equal(suppressed.length, 0);
});

test("a subject the chain did not vouch for is logged as claimedSubject, never as subject", async () => {
  const { lines, log } = capture();
  log.log("a", "request denied", { reason: "untrusted_issuer", subject: "CN=device-001" }, 0);
  log.log("b", "connection refused", { reason: "certificate_expired", subject: "CN=old" }, 0);
  log.log("c", "request denied", { reason: "device_suspended", subject: "CN=device-002" }, 0);
  await flush();
  assert.deepEqual(
    lines.map((l) => [l.subject, l.claimedSubject]),
    [
      [undefined, "CN=device-001"],
      [undefined, "CN=old"],
      ["CN=device-002", undefined],
    ],
  );
  assert.deepEqual(withClaimedSubject({ reason: "no_certificate" }), { reason: "no_certificate" });
});
