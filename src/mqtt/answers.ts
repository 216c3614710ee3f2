// The packets the gateway itself sends an MQTT client, in the client's protocol version: a refused CONNECT,
// a refused PUBLISH or SUBSCRIBE, and a DISCONNECT. MQTT 5 carries the Portcullis reason code as the
// packet's Reason String; MQTT 3.1.1 has only its return codes (and no refusal for PUBLISH).
import mqtt from "mqtt-packet";

/** The protocol level of CONNECT: 3 (MQIsdp 3.1), 4 (3.1.1) or 5. */
export type ProtocolVersion = 3 | 4 | 5;

/** MQTT 5 reason codes the gateway uses. */
export const V5 = {
  unspecified: 0x80,
  malformed: 0x81,
  protocolError: 0x82,
  notAuthorized: 0x87,
  clientIdNotValid: 0x85,
  serverUnavailable: 0x88,
  serverShuttingDown: 0x8b,
  packetTooLarge: 0x95,
} as const;

/** MQTT 3.1.1 CONNACK return codes. */
const V4_CONNACK = { identifierRejected: 2, serverUnavailable: 3, notAuthorized: 5 } as const;

export type ConnackRefusal = "notAuthorized" | "identifierRejected" | "serverUnavailable";

const V5_OF: Record<ConnackRefusal, number> = {
  notAuthorized: V5.notAuthorized,
  identifierRejected: V5.clientIdNotValid,
  serverUnavailable: V5.serverUnavailable,
};

function encode(packet: mqtt.Packet, version: ProtocolVersion): Buffer {
  return mqtt.generate(packet, { protocolVersion: version });
}

/** A reason string, within MQTT's bounds (a UTF-8 string of at most 65,535 bytes; kept short). */
function reasonString(text: string | undefined): { reasonString: string } | undefined {
  return text === undefined ? undefined : { reasonString: text.slice(0, 256) };
}

export function refusedConnack(
  version: ProtocolVersion,
  why: ConnackRefusal,
  reason: string | undefined,
): Buffer {
  if (version === 5) {
    const properties = reasonString(reason);
    return encode(
      {
        cmd: "connack",
        sessionPresent: false,
        reasonCode: V5_OF[why],
        ...(properties ? { properties } : {}),
      },
      5,
    );
  }
  return encode({ cmd: "connack", sessionPresent: false, returnCode: V4_CONNACK[why] }, version);
}

/** MQTT 5 only: PUBACK (QoS 1) or PUBREC (QoS 2) "not authorized". */
export function refusedPublishAck(qos: 1 | 2, messageId: number, reason: string | undefined): Buffer {
  const properties = reasonString(reason);
  return encode(
    {
      cmd: qos === 1 ? "puback" : "pubrec",
      messageId,
      reasonCode: V5.notAuthorized,
      ...(properties ? { properties } : {}),
    },
    5,
  );
}

/** MQTT 5 only: SUBACK "not authorized" for each filter. */
export function refusedSuback(messageId: number, filters: number, reason: string | undefined): Buffer {
  const properties = reasonString(reason);
  return encode(
    {
      cmd: "suback",
      messageId,
      granted: Array.from({ length: filters }, () => V5.notAuthorized),
      ...(properties ? { properties } : {}),
    },
    5,
  );
}

/** MQTT 5 only (3.1.1 has no server DISCONNECT: the connection is just closed). */
export function disconnect(reasonCode: number, reason: string | undefined): Buffer {
  const properties = reasonString(reason);
  return encode({ cmd: "disconnect", reasonCode, ...(properties ? { properties } : {}) }, 5);
}
