// MQTT listeners end to end, part 1: real clients (mosquitto_pub / mosquitto_sub, MQTT.js 3.1.1 and 5)
// through a real gateway process to the real Mosquitto broker at 127.0.0.1:1883. The CONNECT is judged like
// an HTTP request (trust stores, registry, handshake or application mode); allowed sessions are bridged to
// the broker under their device id; PUBLISH and SUBSCRIBE are held to the topic allow-lists. The broker is
// shared: topics live under a random prefix, device ids (the broker's client ids) are random, and a spy
// subscribed straight at the broker to the prefix sees what really got through. Part 2: mqtt-sessions.test.ts.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { MosquittoSub, MqttGateway, mosquitto, randomId } from "../helpers/mqtt.ts";
import { metricValue, waitFor, within } from "../helpers/registry.ts";

const NOT_AUTHORIZED = 0x87;
const CLIENT_ID_NOT_VALID = 0x85;
/** Generous bound for anything awaited (a loaded 2-core machine). */
const WAIT_MS = 10_000;

describe("MQTT listeners: bridge, authentication, topics, client ids", () => {
  const m = new MqttGateway();

  before(async () => {
    await m.start({
      devices: { pub: ["group"], sub: ["group"], acl: [], spoof: [], strict: [] },
    });
  });
  after(() => m.close());

  test("a device publishes with mosquitto_pub (QoS 1); another device of its group receives it through the gateway", async () => {
    const topic = m.groupTopic("hello");
    const payload = `hello from ${m.id("pub")} ${Date.now()}`;
    const sub = new MosquittoSub([
      ...m.tls("mqtt", "sub"),
      "-V",
      "mqttv311",
      "-q",
      "1",
      "-t",
      m.groupTopic("#"),
      "-C",
      "1",
      "-W",
      "20",
    ]);
    try {
      await sub.waitFor("received SUBACK", WAIT_MS);
      const pub = await mosquitto("mosquitto_pub", [
        ...m.tls("mqtt", "pub"),
        "-d",
        "-q",
        "1",
        "-t",
        topic,
        "-m",
        payload,
      ]);
      assert.equal(pub.code, 0, pub.output);
      assert.match(pub.stdout, /received PUBACK \(Mid: 1, RC:0\)/, pub.output);
      assert.equal(await within(sub.exited, WAIT_MS, "mosquitto_sub gets its one message"), 0, sub.output);
      assert.deepEqual(sub.messages, [`${topic} ${payload}`], sub.output);
    } finally {
      await sub.stop();
    }
    // The broker itself got it: the bridge, not a loop inside the gateway.
    const atBroker = await m.spy.waitForMessage(topic, WAIT_MS);
    assert.equal(atBroker.payload.toString(), payload);
  });

  test("a certificate of an untrusted CA: CONNACK not authorized (untrusted_issuer); in handshake mode no handshake", async () => {
    const v311 = await mosquitto("mosquitto_pub", [
      ...m.tls("mqtt", "wrong"),
      "-V",
      "mqttv311",
      "-t",
      m.deviceTopic("pub", "x"),
      "-m",
      "x",
    ]);
    assert.notEqual(v311.code, 0, v311.output);
    assert.match(v311.stderr, /Connection Refused: not authori[sz]ed/i, v311.output);
    const v5 = await mosquitto("mosquitto_pub", [
      ...m.tls("mqtt", "wrong"),
      "-V",
      "mqttv5",
      "-t",
      m.deviceTopic("pub", "x"),
      "-m",
      "x",
    ]);
    assert.notEqual(v5.code, 0, v5.output);
    assert.match(v5.stderr, /Connection error: Not authorized/, v5.output);

    const client = m.through("mqtt", "wrong");
    const connack = await client.connack;
    assert.equal(connack.reasonCode, NOT_AUTHORIZED);
    assert.equal(connack.properties?.reasonString, "untrusted_issuer");
    await within(client.closed, WAIT_MS, "the refused connection closes");

    // Handshake mode: the TLS connection fails before any MQTT packet (no CONNACK) …
    const failuresBefore =
      metricValue(await m.metrics(), "portcullis_handshake_failures_total", {
        listener: "mqtt-hs",
        reason: "untrusted_issuer",
      }) ?? 0;
    const hs = await mosquitto("mosquitto_pub", [
      ...m.tls("mqtt-hs", "wrong"),
      "-d",
      "-q",
      "1",
      "-t",
      m.deviceTopic("pub", "x"),
      "-m",
      "x",
    ]);
    assert.notEqual(hs.code, 0, hs.output);
    assert.doesNotMatch(hs.stdout, /CONNACK/, hs.output);
    assert.match(`${hs.stdout}${hs.stderr}`, /OpenSSL Error|SSL|TLS|connection was lost/i, hs.output);
    await waitFor(
      async () =>
        metricValue(await m.metrics(), "portcullis_handshake_failures_total", {
          listener: "mqtt-hs",
          reason: "untrusted_issuer",
        }) ===
        failuresBefore + 1,
      WAIT_MS,
      "the gateway counts one refused handshake on mqtt-hs",
    );
    // … while a registered device passes the same listener.
    const ok = await mosquitto("mosquitto_pub", [
      ...m.tls("mqtt-hs", "pub"),
      "-q",
      "1",
      "-t",
      m.deviceTopic("pub", "hs"),
      "-m",
      "via handshake mode",
    ]);
    assert.equal(ok.code, 0, ok.output);
    await m.spy.waitForMessage(m.deviceTopic("pub", "hs"), WAIT_MS);
  });

  test("an unregistered device: CONNACK not authorized, reason string unknown_device (left out with hideReason)", async () => {
    const client = m.through("mqtt", "unregistered");
    const connack = await client.connack;
    assert.equal(connack.reasonCode, NOT_AUTHORIZED);
    assert.equal(connack.properties?.reasonString, "unknown_device");

    const quiet = m.through("mqtt-quiet", "unregistered");
    const hidden = await quiet.connack;
    assert.equal(hidden.reasonCode, NOT_AUTHORIZED);
    assert.equal(hidden.properties?.reasonString, undefined);

    const v311 = m.through("mqtt", "unregistered", { protocolVersion: 4 });
    assert.equal((await v311.connack).returnCode, 5);
  });

  test("topics outside the allow-list: PUBACK / PUBREC / SUBACK 0x87 in MQTT 5, a closed connection in 3.1.1; the broker never sees them", async () => {
    const forbidden = `${m.prefix}/devices/${m.id("pub")}/forbidden`;
    const client = await m.through("mqtt", "acl").connected();

    const q1 = await client.publish(`${forbidden}-q1`, "no", { qos: 1 });
    assert.equal(q1.error?.code, NOT_AUTHORIZED, String(q1.error));
    assert.equal(q1.packet?.cmd, "puback");
    assert.equal((q1.packet as { reasonCode?: number }).reasonCode, NOT_AUTHORIZED);
    assert.equal(q1.packet?.properties?.reasonString, "topic_not_allowed");

    const q2 = await client.publish(`${forbidden}-q2`, "no", { qos: 2 });
    assert.equal(q2.error?.code, NOT_AUTHORIZED, String(q2.error));
    assert.equal(q2.packet?.cmd, "pubrec");

    const q0 = await client.publish(`${forbidden}-q0`, "no", { qos: 0 });
    assert.equal(q0.error, undefined);

    // A filter reaching other devices' topics is not covered by the device's own; one refused filter
    // refuses the whole SUBSCRIBE.
    const sub = await client.subscribe([`${m.prefix}/devices/+/status`, m.deviceTopic("acl", "#")]);
    assert.equal(sub.suback?.cmd, "suback");
    assert.deepEqual(sub.suback?.granted, [NOT_AUTHORIZED, NOT_AUTHORIZED]);
    assert.equal(sub.suback?.properties?.reasonString, "topic_not_allowed");
    assert.ok(sub.error, "MQTT.js reports the refused subscription");

    // The session lives on, and its own topic goes through; the spy gets that one after anything earlier.
    assert.equal(client.isClosed, false);
    const own = m.deviceTopic("acl", "sentinel");
    const ok = await client.publish(own, "yes", { qos: 1 });
    assert.equal(ok.error, undefined);
    await m.spy.waitForMessage(own, WAIT_MS);

    // MQTT 3.1.1 has no refusal for PUBLISH or SUBSCRIBE: the connection is closed.
    const v311 = await m.through("mqtt", "acl", { protocolVersion: 4 }).connected();
    v311.client.publish(`${forbidden}-311`, "no", { qos: 1 });
    await within(v311.closed, WAIT_MS, "3.1.1 connection closed after a forbidden PUBLISH");
    assert.equal(v311.received.filter((p) => p.cmd === "puback").length, 0);
    const v311sub = await m.through("mqtt", "acl", { protocolVersion: 4 }).connected();
    v311sub.client.subscribe(`${m.prefix}/devices/${m.id("pub")}/#`, { qos: 1 });
    await within(v311sub.closed, WAIT_MS, "3.1.1 connection closed after a forbidden SUBSCRIBE");
    assert.equal(v311sub.received.filter((p) => p.cmd === "suback").length, 0);
    const pub311 = await mosquitto("mosquitto_pub", [
      ...m.tls("mqtt", "acl"),
      "-V",
      "mqttv311",
      "-q",
      "1",
      "-t",
      `${forbidden}-mosquitto`,
      "-m",
      "no",
    ]);
    assert.notEqual(pub311.code, 0, pub311.output);
    assert.match(pub311.stderr, /connection was lost/i, pub311.output);

    // A will to a topic outside the list would reach the broker unchecked later: refused at CONNECT.
    const will = m.through("mqtt", "acl", {
      will: { topic: `${forbidden}-will`, payload: Buffer.from("no"), qos: 1, retain: false },
    });
    const willConnack = await will.connack;
    assert.equal(willConnack.reasonCode, NOT_AUTHORIZED);
    assert.equal(willConnack.properties?.reasonString, "topic_not_allowed");

    // A last allowed message after all of it: once the spy has it, none of the forbidden ones arrived before.
    const last = m.deviceTopic("acl", "last");
    assert.equal(
      (await (await m.through("mqtt", "acl").connected()).publish(last, "end", { qos: 1 })).error,
      undefined,
    );
    await m.spy.waitForMessage(last, WAIT_MS);
    assert.deepEqual(
      m.spied().filter((t) => t.startsWith(forbidden)),
      [],
      "the broker got none of the forbidden messages",
    );
  });

  test("a spoofed client id and username are replaced by the device id (the broker's takeover proves it); clientId: refuse refuses them", async () => {
    const decoy = randomId("someone-else");
    const spoofer = await m
      .through("mqtt", "spoof", {
        clientId: decoy,
        username: "admin",
        password: Buffer.from("x"),
      })
      .connected();
    const topic = m.deviceTopic("spoof", "alive");
    // A session at the broker under the spoofed id leaves the gateway session alone …
    const decoyAtBroker = await m.direct({ clientId: decoy }).connected();
    assert.equal((await spoofer.publish(topic, "still here", { qos: 1 })).error, undefined);
    assert.equal(spoofer.isClosed, false);
    await decoyAtBroker.end();
    // … one under the device id takes the session over: the broker knew it by the device id.
    const takeover = await m.direct({ clientId: m.id("spoof") }).connected();
    // (Mosquitto 2.0 closes the older session without a DISCONNECT; the gateway then closes the device's.)
    await within(spoofer.closed, WAIT_MS, "the broker's takeover closes the spoofer's connection");
    assert.equal(
      spoofer.received.some((p) => p.cmd === "disconnect" && p.reasonCode === NOT_AUTHORIZED),
      false,
      "closed by the broker, not refused by the gateway",
    );
    await takeover.end();

    // clientId: refuse: another client id is "identifier rejected"; the device id (or none) is accepted.
    const refused = m.through("mqtt-strict", "strict", { clientId: "someone-else" });
    const connack = await refused.connack;
    assert.equal(connack.reasonCode, CLIENT_ID_NOT_VALID);
    assert.equal(connack.properties?.reasonString, "client_id_not_allowed");
    const v311 = await mosquitto("mosquitto_pub", [
      ...m.tls("mqtt-strict", "strict"),
      "-V",
      "mqttv311",
      "-i",
      "someone-else",
      "-t",
      m.deviceTopic("strict", "x"),
      "-m",
      "x",
    ]);
    assert.notEqual(v311.code, 0, v311.output);
    assert.match(v311.stderr, /identifier rejected/i, v311.output);
    // username: refuse
    const badUser = m.through("mqtt-strict", "strict", { clientId: m.id("strict"), username: "admin" });
    const userConnack = await badUser.connack;
    assert.equal(userConnack.reasonCode, NOT_AUTHORIZED);
    assert.equal(userConnack.properties?.reasonString, "client_id_not_allowed");
    const own = await m
      .through("mqtt-strict", "strict", {
        clientId: m.id("strict"),
        username: m.id("strict"),
      })
      .connected();
    await own.end();
    const empty = await m.through("mqtt-strict", "strict", { clientId: "" }).connected();
    await empty.end();
  });
});
