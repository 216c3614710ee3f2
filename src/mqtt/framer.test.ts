import assert from "node:assert/strict";
import { test } from "node:test";
import mqtt from "mqtt-packet";
import { FrameError, Framer } from "./framer.ts";

const publish = (payload: Buffer) =>
  mqtt.generate({ cmd: "publish", topic: "t/x", payload, qos: 0, dup: false, retain: false });

test("packets split across chunks and several in one chunk come out whole, as sent", () => {
  const a = publish(Buffer.from("one"));
  const b = publish(Buffer.alloc(300, 1)); // a two-byte remaining length
  const framer = new Framer(1024);
  const all = Buffer.concat([a, b]);
  const out = [
    ...framer.push(all.subarray(0, 2)),
    ...framer.push(all.subarray(2, a.length + 1)),
    ...framer.push(all.subarray(a.length + 1)),
  ];
  assert.deepEqual(
    out.map((f) => f.bytes),
    [a, b],
  );
  assert.deepEqual(
    out.map((f) => f.type),
    [3, 3],
  );
});

test("a packet over the limit is refused from its header, before its body arrives", () => {
  const framer = new Framer(100);
  const big = publish(Buffer.alloc(200));
  assert.throws(
    () => framer.push(big.subarray(0, 3)),
    (e: Error) => e instanceof FrameError && e.tooLarge,
  );
});

test("a remaining length longer than 4 bytes and packet type 0 are malformed", () => {
  assert.throws(
    () => new Framer(1 << 28).push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])),
    (e: Error) => e instanceof FrameError && !e.tooLarge,
  );
  assert.throws(() => new Framer(1024).push(Buffer.from([0x00, 0x00])), FrameError);
});

test("the limit can change between packets (CONNECT smaller than what follows)", () => {
  const framer = new Framer(10);
  assert.throws(() => framer.push(publish(Buffer.alloc(50))), FrameError);
  const later = new Framer(10);
  later.maxBytes = 1000;
  assert.equal(later.push(publish(Buffer.alloc(50))).length, 1);
});
