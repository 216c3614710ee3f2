import assert from "node:assert/strict";
import { test } from "node:test";
import { fakeEnv, fakeRequest } from "../testing/support.ts";
import { addressRule, ipRestriction } from "./handler.ts";
import { ipRestrictionSchema } from "./schema.ts";

test("schema: CIDRs and bare addresses, IPv4 and IPv6", () => {
  assert.ok(ipRestrictionSchema.safeParse({ allow: ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"] }).success);
  assert.equal(ipRestrictionSchema.safeParse({ allow: ["10.0.0.0/33"] }).success, false);
  assert.equal(ipRestrictionSchema.safeParse({ deny: ["not-an-ip"] }).success, false);
  assert.equal(ipRestrictionSchema.safeParse({}).success, false);
});

test("addressRule: deny wins, allow limits, IPv6", () => {
  const rule = addressRule(
    ipRestrictionSchema.parse({ allow: ["10.0.0.0/8", "2001:db8::/32"], deny: ["10.1.0.0/16"] }),
  );
  assert.equal(rule.refusal("10.2.3.4"), undefined);
  assert.match(rule.refusal("10.1.2.3") ?? "", /denied/);
  assert.match(rule.refusal("192.0.2.1") ?? "", /outside/);
  assert.equal(rule.refusal("2001:db8::5"), undefined);
  assert.ok(rule.refusal("2001:db9::5"));
  assert.ok(rule.refusal(""), "an unknown address is outside every allowed range");
  const denyOnly = addressRule(ipRestrictionSchema.parse({ deny: ["127.0.0.1"] }));
  assert.ok(denyOnly.refusal("127.0.0.1"));
  assert.equal(denyOnly.refusal("127.0.0.2"), undefined);
});

test("plugin: 403 ip_not_allowed", () => {
  const plugin = ipRestriction.create(ipRestrictionSchema.parse({ allow: ["192.0.2.0/24"] }), fakeEnv());
  assert.equal(plugin.access?.(fakeRequest({ clientAddress: "192.0.2.200" })), undefined);
  const out = plugin.access?.(fakeRequest({ clientAddress: "198.51.100.1" }));
  assert.deepEqual(out && "reason" in out && out.reason, "ip_not_allowed");
});
