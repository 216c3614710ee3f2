import assert from "node:assert/strict";
import { test } from "node:test";
import { fakeEnv, fakeRequest } from "../testing/support.ts";
import { acl, aclRefusal } from "./handler.ts";
import { aclSchema } from "./schema.ts";

test("schema: allow, deny or both; never neither", () => {
  assert.ok(aclSchema.safeParse({ allow: ["a"] }).success);
  assert.ok(aclSchema.safeParse({ deny: ["a"] }).success);
  assert.equal(aclSchema.safeParse({}).success, false);
  assert.equal(aclSchema.safeParse({ allow: [] }).success, false);
  assert.equal(aclSchema.safeParse({ allow: ["a"], other: 1 }).success, false);
});

test("aclRefusal: deny first, then allow", () => {
  const c = aclSchema.parse({ allow: ["fleet-a", "fleet-b"], deny: ["quarantine"] });
  assert.equal(aclRefusal(c, ["fleet-a"]), undefined);
  assert.equal(aclRefusal(c, ["x", "fleet-b"]), undefined);
  assert.match(aclRefusal(c, ["fleet-a", "quarantine"]) ?? "", /denied group "quarantine"/);
  assert.match(aclRefusal(c, ["fleet-c"]) ?? "", /none of the allowed/);
  assert.match(aclRefusal(c, []) ?? "", /none of the allowed/);
  const denyOnly = aclSchema.parse({ deny: ["quarantine"] });
  assert.equal(aclRefusal(denyOnly, []), undefined);
  assert.ok(aclRefusal(denyOnly, ["quarantine"]));
});

test("plugin: 403 group_not_allowed, also without an identity", () => {
  const plugin = acl.create(aclSchema.parse({ deny: ["quarantine"] }), fakeEnv());
  assert.equal(plugin.access?.(fakeRequest({ deviceId: "d", groups: ["fleet-a"] })), undefined);
  const denied = plugin.access?.(fakeRequest({ deviceId: "d", groups: ["quarantine"] }));
  assert.deepEqual(denied && "reason" in denied && denied.reason, "group_not_allowed");
  const anonymous = plugin.access?.(fakeRequest({}));
  assert.deepEqual(anonymous && "reason" in anonymous && anonymous.reason, "group_not_allowed");
  // A device without registry groups is in no group.
  assert.equal(plugin.access?.(fakeRequest({ deviceId: "d" })), undefined);
});
