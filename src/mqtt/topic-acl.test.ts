import assert from "node:assert/strict";
import { test } from "node:test";
import { TopicAcl } from "./topic-acl.ts";

const acl = (
  publish: string[],
  subscribe: string[],
  deviceId: string | undefined = "d1",
  groups: string[] = [],
) => new TopicAcl({ publish, subscribe }, { deviceId, groups });

test("publish: {deviceId} is filled in; + and # match as MQTT does", () => {
  const a = acl(["devices/{deviceId}/#", "status/+/{deviceId}"], []);
  assert.ok(a.mayPublish("devices/d1/telemetry"));
  assert.ok(a.mayPublish("devices/d1"));
  assert.ok(a.mayPublish("status/x/d1"));
  assert.ok(!a.mayPublish("devices/d2/telemetry"));
  assert.ok(!a.mayPublish("status/x/y/d1"));
  assert.ok(!a.mayPublish("devices/d1/+"), "a topic name with a wildcard is never allowed");
  assert.ok(!a.mayPublish(""));
});

test("subscribe: a filter is allowed only when every topic it can match is", () => {
  const a = acl([], ["devices/{deviceId}/#", "fleet/+/commands"]);
  assert.ok(a.maySubscribe("devices/d1/#"));
  assert.ok(a.maySubscribe("devices/d1/config/+"));
  assert.ok(a.maySubscribe("fleet/eu/commands"));
  assert.ok(a.maySubscribe("fleet/+/commands"));
  assert.ok(!a.maySubscribe("devices/+/#"), "other devices' topics");
  assert.ok(!a.maySubscribe("devices/#"));
  assert.ok(!a.maySubscribe("#"));
  assert.ok(!a.maySubscribe("fleet/#"));
  assert.ok(!a.maySubscribe("fleet/eu/commands/#"));
  assert.ok(a.maySubscribe("$share/workers/devices/d1/#"), "a shared subscription is judged by its filter");
  assert.ok(!a.maySubscribe("$share/workers/devices/d2/#"));
  assert.ok(!a.maySubscribe("devices/d1/#/x"), "malformed filters are refused");
  assert.ok(!a.maySubscribe("devices/d1+"));
});

test("{group} gives one filter per group of the device", () => {
  const a = acl(["groups/{group}/events"], ["groups/{group}/#"], "d1", ["eu", "sensors"]);
  assert.ok(a.mayPublish("groups/eu/events"));
  assert.ok(a.mayPublish("groups/sensors/events"));
  assert.ok(!a.mayPublish("groups/us/events"));
  assert.ok(a.maySubscribe("groups/eu/#"));
  assert.ok(!acl(["groups/{group}/events"], [], "d1", []).mayPublish("groups/{group}/events"));
});

test("a device id or group with /, + or # cannot widen a filter; without a device id, {deviceId} filters are out", () => {
  assert.ok(!acl(["devices/{deviceId}/x"], [], "a/b").mayPublish("devices/a/b/x"));
  assert.ok(!acl([], ["devices/{deviceId}/#"], "#").maySubscribe("devices/#"));
  assert.ok(!acl([], ["devices/{deviceId}/#"], "+").maySubscribe("devices/+/#"));
  assert.ok(!acl([], ["g/{group}/#"], "d1", ["#"]).maySubscribe("g/#"));
  assert.ok(!acl(["devices/{deviceId}/x"], [], undefined).mayPublish("devices/undefined/x"));
  assert.ok(acl(["public/x"], [], undefined).mayPublish("public/x"));
});

test("$ topics are matched only by filters that name them", () => {
  assert.ok(!acl(["#"], ["#"]).mayPublish("$SYS/x"));
  assert.ok(!acl([], ["#"]).maySubscribe("$SYS/#"));
  assert.ok(acl([], ["$SYS/broker/#"]).maySubscribe("$SYS/broker/uptime"));
});
