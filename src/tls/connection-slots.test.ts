import assert from "node:assert/strict";
import { test } from "node:test";
import type { TLSSocket } from "node:tls";
import { ConnectionSlots, type Slot, type SlotLimit } from "./connection-slots.ts";

function fakeSocket(name: string): TLSSocket & { name: string } {
  const socket = {
    name,
    destroyed: false,
    destroy() {
      socket.destroyed = true;
    },
  };
  return socket as unknown as TLSSocket & { name: string };
}

function setup(limits = { maxUnauthenticatedConnections: 2, maxConnectionsPerIdentity: 2 }) {
  const hits: string[] = [];
  const slots = new ConnectionSlots({
    limitHit: (limit: SlotLimit, action) => hits.push(`${limit}:${action}`),
  });
  const admit = (name: string, identity: string | undefined, limited: boolean): Slot | undefined =>
    slots.admit(fakeSocket(name), identity, limited, limits);
  return { slots, hits, limits, admit };
}

const nameOf = (slot: Slot | undefined) => (slot?.socket as unknown as { name: string } | undefined)?.name;

test("a full unauthenticated pool evicts the connection idle the longest", () => {
  const { slots, hits, admit } = setup();
  const a = admit("a", undefined, true);
  const b = admit("b", undefined, true);
  assert.ok(a && b);
  slots.requestStarted(a); // a is now the most recently active
  slots.requestEnded(a);
  const c = admit("c", undefined, true);
  assert.ok(c, "admitted");
  assert.equal(b.socket.destroyed, true, "b was idle the longest");
  assert.equal(a.socket.destroyed, false);
  assert.equal(slots.unauthenticated, 2);
  assert.deepEqual(hits, ["maxUnauthenticatedConnections:evicted"]);
});

test("a connection with a request in flight is never evicted; with none idle, the new one is refused", () => {
  const { slots, hits, admit } = setup();
  const a = admit("a", undefined, true);
  const b = admit("b", undefined, true);
  assert.ok(a && b);
  slots.requestStarted(a);
  slots.requestStarted(b);
  assert.equal(admit("c", undefined, true), undefined, "refused");
  assert.deepEqual(hits, ["maxUnauthenticatedConnections:refused"]);
  slots.requestEnded(b);
  assert.equal(nameOf(admit("d", undefined, true)), "d", "b became idle and makes room");
  assert.equal(a.socket.destroyed, false);
  assert.equal(b.socket.destroyed, true);
});

test("authenticated connections are not counted in the unauthenticated pool", () => {
  const { slots, admit } = setup();
  for (const name of ["a", "b", "c", "d"]) assert.ok(admit(name, `fp-${name}`, false));
  assert.equal(slots.unauthenticated, 0);
});

test("one identity holds at most maxConnectionsPerIdentity connections; the idle-longest one goes", () => {
  const { slots, hits, admit } = setup();
  const a = admit("a", "fp", false);
  const b = admit("b", "fp", false);
  assert.ok(a && b);
  slots.requestStarted(a);
  const c = admit("c", "fp", false);
  assert.ok(c);
  assert.equal(b.socket.destroyed, true);
  assert.equal(a.socket.destroyed, false, "a has a request in flight");
  slots.requestStarted(c);
  assert.equal(admit("d", "fp", false), undefined, "both busy: refused");
  assert.ok(admit("e", "other", false), "another identity is not affected");
  assert.deepEqual(hits, ["maxConnectionsPerIdentity:evicted", "maxConnectionsPerIdentity:refused"]);
});

test("setLimited moves a connection in and out of the pool, evicting to make room", () => {
  const { slots, limits, admit } = setup();
  const a = admit("a", undefined, true);
  const b = admit("b", undefined, true);
  const device = admit("device", "fp", false);
  assert.ok(a && b && device);
  slots.requestStarted(device);
  assert.equal(slots.setLimited(device, true, limits), true, "denied: it joins the pool");
  assert.equal(a.socket.destroyed, true, "a made room");
  assert.equal(slots.unauthenticated, 2);
  slots.requestStarted(b);
  const busy = admit("busy", "fp2", false);
  assert.ok(busy);
  assert.equal(slots.setLimited(busy, true, limits), false, "no idle one to evict: close it");
  assert.equal(slots.setLimited(device, false, limits), true, "allowed again: it leaves the pool");
  assert.equal(slots.unauthenticated, 1);
});

test("release is idempotent and frees both pools", () => {
  const { slots, admit } = setup();
  const a = admit("a", "fp", true);
  assert.ok(a);
  slots.release(a);
  slots.release(a);
  assert.equal(slots.unauthenticated, 0);
  assert.ok(admit("b", "fp", true));
  assert.ok(admit("c", "fp", true));
  assert.equal(slots.unauthenticated, 2);
});
