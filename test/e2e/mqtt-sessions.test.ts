// MQTT listeners end to end, part 2 (part 1: mqtt.test.ts): what happens to live sessions (suspension, a
// group removed, oversized packets), QoS 2, retained and large messages through the gateway, and MQTT
// refusals as decisions and metrics; real clients, a real gateway process, the shared Mosquitto broker
// (random topic prefix and device ids; retained messages cleared at the end).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { connect as netConnect } from "node:net";
import { after, before, describe, test } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { MqttGateway, randomId, SMALL_MAX_PACKET, STRICT_MAX_CONNECT } from "../helpers/mqtt.ts";
import { metricValue, waitFor, within } from "../helpers/registry.ts";

const NOT_AUTHORIZED = 0x87;
const CLIENT_ID_NOT_VALID = 0x85;
const PACKET_TOO_LARGE = 0x95;
/** Generous bound for anything awaited (a loaded 2-core machine); the product's own promises are checked apart. */
const WAIT_MS = 10_000;

describe("MQTT listeners: live sessions, QoS, sizes, decisions", () => {
  const m = new MqttGateway();

  before(async () => {
    await m.start({
      devices: {
        pub: ["group"],
        sub: ["group"],
        suspend: [],
        leaver: ["group"],
        big: [],
        bigin: [],
        metrics: [],
      },
    });
  });
  after(() => m.close());

  /** A TLS connection to mqtt-strict with a registered device's certificate; resolves when the gateway closes it. */
  const closedAfter = async (send: Buffer | undefined, trickle = false): Promise<number> => {
    const device = m.device("metrics");
    const socket = tlsConnect({
      port: m.port("mqtt-strict"),
      host: "127.0.0.1",
      servername: "localhost",
      ca: readFileSync(`${m.tmp.dir}/ca-chain.crt`),
      cert: readFileSync(device.certFile),
      key: readFileSync(device.keyFile),
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    const openedAt = performance.now();
    if (send) socket.write(send);
    // With `trickle`, one more byte of the CONNECT's body every 400 ms (never all 32 of them).
    const timer = trickle ? setInterval(() => socket.write(Buffer.from([0])), 400) : undefined;
    socket.resume();
    await new Promise<void>((resolve) => socket.once("close", () => resolve()));
    clearInterval(timer);
    return performance.now() - openedAt;
  };

  test("a connection without a CONNECT is closed at connectTimeout, one trickling bytes too; counted", async () => {
    const limitHits = async (limit: string) =>
      metricValue(await m.metrics(), "portcullis_connection_limit_hits_total", {
        listener: "mqtt-strict",
        limit,
        action: "closed",
      }) ?? 0;
    const before = await limitHits("connectTimeout");
    const silent = await closedAfter(undefined);
    assert.ok(
      silent >= 1500 && silent < 10_000,
      `closed after ${Math.round(silent)} ms, connectTimeout is 2s`,
    );
    // The start of a CONNECT whose rest never comes: a deadline, not an idle timer that each byte restarts.
    const elapsed = await closedAfter(Buffer.from([0x10, 0x20]), true);
    assert.ok(elapsed >= 1500 && elapsed < 10_000, `closed after ${Math.round(elapsed)} ms`);
    await waitFor(
      async () => (await limitHits("connectTimeout")) === before + 2,
      5000,
      "two connectTimeout hits",
    );
  });

  test("a TCP connection that never starts its TLS handshake is closed at handshakeTimeout; counted", async () => {
    const failures = async () =>
      metricValue(await m.metrics(), "portcullis_handshake_failures_total", { listener: "mqtt-strict" }) ?? 0;
    const before = await failures();
    const socket = netConnect({ host: "127.0.0.1", port: m.port("mqtt-strict") });
    socket.on("error", () => undefined);
    const startedAt = performance.now();
    const closed = new Promise<number>((resolve) =>
      socket.once("close", () => resolve(performance.now() - startedAt)),
    );
    try {
      const elapsed = await within(closed, 15_000, "the gateway closing a connection that sent nothing");
      assert.ok(elapsed >= 1500, `closed after ${Math.round(elapsed)} ms, handshakeTimeout is 2s`);
    } finally {
      socket.destroy();
    }
    await waitFor(async () => (await failures()) === before + 1, 5000, "one handshake failure");
  });

  test("a CONNECT over maxConnectBytes is refused from its header; counted", async () => {
    const limitHits = async () =>
      metricValue(await m.metrics(), "portcullis_connection_limit_hits_total", {
        listener: "mqtt-strict",
        limit: "maxConnectBytes",
        action: "closed",
      }) ?? 0;
    const before = await limitHits();
    // CONNECT with a remaining length of STRICT_MAX_CONNECT + 10 (two-byte varint); the body never needs to come.
    const length = STRICT_MAX_CONNECT + 10;
    const elapsed = await closedAfter(Buffer.from([0x10, (length % 128) | 0x80, Math.floor(length / 128)]));
    assert.ok(elapsed < 1500, `closed after ${Math.round(elapsed)} ms, before connectTimeout`);
    await waitFor(async () => (await limitHits()) === before + 1, 5000, "one maxConnectBytes hit");
  });

  test("suspending a device disconnects its live MQTT 5 session within a second (DISCONNECT 0x87)", async () => {
    const client = await m.through("mqtt", "suspend").connected();
    const own = m.deviceTopic("suspend", "alive");
    assert.equal((await client.publish(own, "alive", { qos: 1 })).error, undefined);

    await m.admin.patch(m.id("suspend"), { status: "suspended" });
    const answered = performance.now();
    const closedAt = await within(client.closed, WAIT_MS, "the suspended device's session closes");
    assert.ok(
      closedAt - answered < 1_000,
      `closed ${Math.round(closedAt - answered)} ms after the PATCH answer`,
    );
    const disconnect = client.received.find((p) => p.cmd === "disconnect") as
      | { reasonCode?: number }
      | undefined;
    assert.equal(disconnect?.reasonCode, NOT_AUTHORIZED, "an MQTT 5 DISCONNECT not authorized came first");

    const again = m.through("mqtt", "suspend");
    const connack = await again.connack;
    assert.equal(connack.reasonCode, NOT_AUTHORIZED);
    assert.equal(connack.properties?.reasonString, "device_suspended");
  });

  // BUG (see the report): a session's topic allow-list is fixed at its CONNECT (mqtt-session.ts builds its
  // TopicAcl once, from the CONNECT's groups; the per-PUBLISH recheck is the certificate engine's, without the
  // registry) and the registry closes no session when a device's groups change (device-registry.ts #onChange
  // closes on status, deletion and bindings only). A device taken out of a group keeps publishing to and
  // receiving that group's topics for as long as its session lasts, where its next HTTP request would be
  // judged with its new groups.
  test("a device taken out of a group loses the group's topics on its open session (refused, or disconnected)", async () => {
    const client = await m.through("mqtt", "leaver").connected();
    const own = m.deviceTopic("leaver", "#");
    assert.equal((await client.subscribe([m.groupTopic("#"), own], 1)).error, null);
    const inGroup = m.groupTopic("leaver-before");
    assert.equal((await client.publish(inGroup, "in the group", { qos: 1 })).error, undefined);
    await client.waitForMessage(inGroup, WAIT_MS);

    await m.admin.patch(m.id("leaver"), { groups: [] });
    // Its PUBLISH to the group: refused (PUBACK 0x87), or the session is closed.
    const afterTopic = m.groupTopic("leaver-after");
    const outcome = client.isClosed
      ? undefined
      : await client.publish(afterTopic, "not a member", { qos: 1 });
    const publishAccepted = outcome !== undefined && outcome.error === undefined;
    // A message to the group: not delivered to it. The broker delivers in order, so once the sentinel that
    // a direct publisher sends after it has arrived (or the session closed), a delivery would have shown.
    const publisher = await m.direct().connected();
    const groupMessage = m.groupTopic("for-members");
    const sentinel = m.deviceTopic("leaver", "sentinel");
    await publisher.publish(groupMessage, "members only", { qos: 1 });
    await publisher.publish(sentinel, "sentinel", { qos: 1 });
    await Promise.race([client.waitForMessage(sentinel, WAIT_MS).catch(() => {}), client.closed]);
    assert.ok(
      client.isClosed || client.messages(sentinel).length === 1,
      "the sentinel arrived, or the session closed",
    );
    const delivered = client.messages(groupMessage).length > 0;
    // A session closed for the change may have let one of them pass just before: that is a disconnection too.
    const disconnected =
      client.isClosed ||
      ((publishAccepted || delivered) &&
        (await within(client.closed, WAIT_MS, "").then(
          () => true,
          () => false,
        )));
    assert.ok(
      disconnected || (!publishAccepted && !delivered),
      `after PATCH groups [], the open session ${publishAccepted ? "published to the group (PUBACK 0)" : ""}` +
        `${publishAccepted && delivered ? " and " : ""}${delivered ? "received the group's message" : ""}` +
        ` and stayed open`,
    );
    if (outcome?.error?.code === NOT_AUTHORIZED) assert.equal(m.spied().includes(afterTopic), false);

    // A new session of the device is held to its new groups.
    const fresh = await m.through("mqtt", "leaver").connected();
    const refused = await fresh.publish(m.groupTopic("leaver-new"), "no", { qos: 1 });
    assert.equal(refused.error?.code, NOT_AUTHORIZED);
  });

  test("QoS 2 retained messages and a 512 KiB payload round-trip; a packet over maxPacketBytes closes (0x95)", async () => {
    const state = m.groupTopic("state");
    m.retain(state);
    const publisher = await m.through("mqtt", "pub").connected();
    const sent = await publisher.publish(state, "retained-state", { qos: 2, retain: true });
    assert.equal(sent.error, undefined);
    assert.ok(
      publisher.received.some((p) => p.cmd === "pubcomp"),
      "the QoS 2 exchange completed (PUBCOMP)",
    );

    const subscriber = await m.through("mqtt", "sub").connected();
    const granted = await subscriber.subscribe([state], 2);
    assert.equal(granted.error, null);
    assert.deepEqual(granted.suback?.granted, [2]);
    const got = await subscriber.waitForMessage(state, WAIT_MS);
    assert.equal(got.payload.toString(), "retained-state");
    assert.equal(got.retain, true, "delivered as retained to a new subscriber");
    assert.equal(got.qos, 2);

    const bulkTopic = m.groupTopic("bulk");
    assert.equal((await subscriber.subscribe([bulkTopic], 1)).error, null);
    const bulk = Buffer.alloc(512 * 1024);
    for (let i = 0; i < bulk.length; i++) bulk[i] = (i * 31 + (i >> 8)) & 0xff;
    const bulkSent = await publisher.publish(bulkTopic, bulk, { qos: 1 });
    assert.equal(bulkSent.error, undefined);
    const bulkGot = await subscriber.waitForMessage(bulkTopic, WAIT_MS);
    assert.equal(bulkGot.payload.length, bulk.length);
    assert.ok(Buffer.from(bulkGot.payload).equals(bulk), "the payload arrives byte for byte");

    // maxPacketBytes 64 KiB on mqtt-strict: a larger PUBLISH ends the session, and never reaches the broker.
    const small = await m.through("mqtt-strict", "big", { clientId: m.id("big") }).connected();
    const fits = m.deviceTopic("big", "fits");
    assert.equal((await small.publish(fits, Buffer.alloc(32 * 1024, 1), { qos: 1 })).error, undefined);
    const tooBig = m.deviceTopic("big", "too-big");
    small.client.publish(tooBig, Buffer.alloc(SMALL_MAX_PACKET + 1024, 2), { qos: 1 });
    const disconnect = await small.waitForPacket((p) => p.cmd === "disconnect", WAIT_MS, "DISCONNECT");
    assert.equal((disconnect as { reasonCode?: number }).reasonCode, PACKET_TOO_LARGE);
    await within(small.closed, WAIT_MS, "the session closes");
    const last = m.deviceTopic("big", "last");
    const after = await m.through("mqtt", "big").connected();
    assert.equal((await after.publish(last, "end", { qos: 1 })).error, undefined);
    await m.spy.waitForMessage(last, WAIT_MS);
    assert.ok(m.spied().includes(fits));
    assert.equal(m.spied().includes(tooBig), false, "the broker never got the oversized PUBLISH");
  });

  // BUG (see the report): `maxPacketBytes` is documented as the largest packet "either way" (schema.ts), but
  // only the device's packets are held to it (mqtt-session.ts frames the client's bytes; the broker's are piped
  // through unchecked, and the CONNECT sent on carries no MQTT 5 Maximum Packet Size for the broker to honour).
  test("maxPacketBytes holds for the broker's packets too: a larger message is not delivered (or the session closes)", async () => {
    const client = await m.through("mqtt-strict", "bigin", { clientId: m.id("bigin") }).connected();
    assert.equal((await client.subscribe([m.deviceTopic("bigin", "#")], 1)).error, null);
    const publisher = await m.direct().connected();
    const huge = m.deviceTopic("bigin", "huge");
    const sentinel = m.deviceTopic("bigin", "sentinel");
    assert.equal(
      (await publisher.publish(huge, Buffer.alloc(SMALL_MAX_PACKET + 1024, 7), { qos: 1 })).error,
      undefined,
    );
    assert.equal((await publisher.publish(sentinel, "after", { qos: 1 })).error, undefined);
    // In order from one publisher: once the sentinel is in (or the session closed), the large one would be too.
    await Promise.race([client.waitForMessage(sentinel, WAIT_MS).catch(() => {}), client.closed]);
    assert.ok(
      client.isClosed || client.messages(sentinel).length === 1,
      "the sentinel arrived, or the session closed",
    );
    assert.deepEqual(
      client.messages(huge).map((p) => p.payload.length),
      [],
      `a ${SMALL_MAX_PACKET + 1024}-byte message reached a device of a listener with maxPacketBytes ${SMALL_MAX_PACKET}`,
    );
  });

  test('MQTT refusals are decisions of route mqtt:<listener> in GET /decisions and portcullis_decisions_total{protocol="mqtt"}', async () => {
    const count = (text: string, route: string, reason: string) =>
      metricValue(text, "portcullis_decisions_total", { result: "deny", reason, route, protocol: "mqtt" }) ??
      0;
    const before = await m.metrics();
    const allowedBefore =
      metricValue(before, "portcullis_decisions_total", {
        result: "allow",
        route: "mqtt:mqtt",
        protocol: "mqtt",
      }) ?? 0;

    const forbidden = `${m.prefix}/devices/${m.id("pub")}/metrics-${randomId("t")}`;
    const client = await m.through("mqtt", "metrics").connected();
    assert.equal((await client.publish(forbidden, "no", { qos: 1 })).error?.code, NOT_AUTHORIZED);
    assert.equal((await m.through("mqtt", "unregistered").connack).reasonCode, NOT_AUTHORIZED);
    assert.equal((await m.through("mqtt", "wrong").connack).reasonCode, NOT_AUTHORIZED);
    assert.equal(
      (await m.through("mqtt-strict", "metrics", { clientId: "someone-else" }).connack).reasonCode,
      CLIENT_ID_NOT_VALID,
    );

    const after = await m.metrics();
    assert.equal(
      count(after, "mqtt:mqtt", "topic_not_allowed"),
      count(before, "mqtt:mqtt", "topic_not_allowed") + 1,
      after,
    );
    assert.equal(
      count(after, "mqtt:mqtt", "unknown_device"),
      count(before, "mqtt:mqtt", "unknown_device") + 1,
    );
    assert.equal(
      count(after, "mqtt:mqtt", "untrusted_issuer"),
      count(before, "mqtt:mqtt", "untrusted_issuer") + 1,
    );
    assert.equal(
      count(after, "mqtt:mqtt-strict", "client_id_not_allowed"),
      count(before, "mqtt:mqtt-strict", "client_id_not_allowed") + 1,
    );
    const allowedAfter = metricValue(after, "portcullis_decisions_total", {
      result: "allow",
      route: "mqtt:mqtt",
      protocol: "mqtt",
    });
    assert.ok((allowedAfter ?? 0) >= allowedBefore + 1, "the allowed CONNECT counts too");

    interface DecisionJson {
      route?: string;
      listener?: string;
      allow: boolean;
      reason?: string;
      detail?: string;
      deviceId?: string;
    }
    let decisions: DecisionJson[] = [];
    await waitFor(
      async () => {
        decisions = (await m.admin.call<{ decisions: DecisionJson[] }>("GET", "/decisions?limit=50")).json
          .decisions;
        return decisions.some((d) => d.reason === "client_id_not_allowed");
      },
      WAIT_MS,
      "the decisions are listed",
    );
    const find = (route: string, reason: string) =>
      decisions.find((d) => d.route === route && d.reason === reason);
    const topic = find("mqtt:mqtt", "topic_not_allowed");
    assert.ok(topic, JSON.stringify(decisions, null, 1));
    assert.equal(topic.allow, false);
    assert.equal(topic.listener, "mqtt");
    assert.equal(topic.deviceId, m.id("metrics"));
    assert.match(topic.detail ?? "", new RegExp(forbidden));
    assert.ok(find("mqtt:mqtt", "unknown_device"));
    assert.ok(find("mqtt:mqtt", "untrusted_issuer"));
    const clientId = find("mqtt:mqtt-strict", "client_id_not_allowed");
    assert.ok(clientId);
    assert.equal(clientId.deviceId, m.id("metrics"));
    assert.ok(decisions.some((d) => d.route === "mqtt:mqtt" && d.allow && d.deviceId === m.id("metrics")));
  });
});
