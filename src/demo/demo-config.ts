// The demo's portcullis.yaml: written next to the demo PKI with paths relative to itself, so that
// `portcullis start --config <dir>/portcullis.yaml` runs the same gateway.
import { stringify } from "yaml";
import type { ClientAuthMode, ConfigInput } from "../config/schema.ts";
import { ENROLL_CRL } from "../pki/demo-pki.ts";

export const DEMO_HOSTS = ["localhost", "127.0.0.1", "mtls.auth.local.com"];

export interface DemoConfigOptions {
  readonly mode: ClientAuthMode;
  readonly port: number;
  readonly adminPort: number;
  readonly upstream: string;
  /** The MQTT listener's port (default 8883), and the broker it bridges to (default mqtt://127.0.0.1:1883). */
  readonly mqttPort?: number;
  readonly mqttBroker?: string;
  /** `sqlite:PATH` (relative to the demo directory) or `postgres://…`. */
  readonly store: string;
}

/** The demo's enrollment profile, and the device its one-time token is for. */
export const DEMO_ENROLL_PROFILE = "devices";
export const DEMO_ENROLL_DEVICE = "device-002";

/** The demo's MQTT listener, and its preferred port when neither --mqtt-port nor an earlier run chose one. */
export const DEMO_MQTT_LISTENER = "mqtt";
export const DEMO_MQTT_PORT = 8883;
export const DEMO_MQTT_BROKER = "mqtt://127.0.0.1:1883";
/** Each device publishes and subscribes under its own topic tree. */
export const DEMO_MQTT_TOPICS = "devices/{deviceId}/#";

/** The demo's rate-limited route: DEMO_RATE_LIMIT requests per device and minute. */
export const DEMO_LIMITED_ROUTE = "limited-echo";
export const DEMO_LIMITED_PATH = "/limited/echo";
export const DEMO_RATE_LIMIT = 5;

/** The demo's WebSocket route, to the echo service. */
export const DEMO_WS_ROUTE = "ws-echo";
export const DEMO_WS_PATH = "/ws/echo";

/** Enrollment needs a listener a device without a certificate can reach: not in handshake mode. */
export function demoHasEnrollment(mode: ClientAuthMode): boolean {
  return mode !== "handshake";
}

export function demoConfig(options: DemoConfigOptions): ConfigInput {
  const enroll = demoHasEnrollment(options.mode);
  return {
    listeners: [
      {
        name: "demo",
        host: "127.0.0.1",
        port: options.port,
        clientAuth: options.mode,
        certificates: [{ cert: "server.crt", key: "server.key" }],
        trustStores: ["devices"],
      },
      {
        // MQTT over TLS with the same certificate and client-auth mode, bridged to a broker (Mosquitto):
        // a registered device connects as itself (client id and username set to its id) and may publish
        // and subscribe under devices/<its id>/ only.
        name: DEMO_MQTT_LISTENER,
        protocol: "mqtt",
        host: "127.0.0.1",
        port: options.mqttPort ?? DEMO_MQTT_PORT,
        clientAuth: options.mode,
        certificates: [{ cert: "server.crt", key: "server.key" }],
        trustStores: ["devices"],
        mqtt: {
          broker: options.mqttBroker ?? DEMO_MQTT_BROKER,
          auth: { trustStores: ["devices"], registry: "required" },
          topics: { publish: [DEMO_MQTT_TOPICS], subscribe: [DEMO_MQTT_TOPICS] },
        },
      },
    ],
    trustStores: [
      {
        name: "devices",
        // The enrollment CA itself: enrolled devices present their certificate alone.
        ca: ["ca-chain.crt", ...(enroll ? ["enroll-ca.crt"] : [])],
        // The demo CRL lists revoked-device, and `portcullis pki revoke --dir <demo>/pki` rewrites it (watched);
        // the enrollment CRL is the gateway's (written at start, rewritten on revocation). Strict: a device
        // whose status cannot be established is refused, so every issuer needs its CRL.
        revocation: {
          mode: "strict",
          crl: { files: ["pki/crl.pem", ...(enroll ? [ENROLL_CRL] : [])], distributionPoints: false },
        },
      },
    ],
    services: [{ name: "echo", targets: [options.upstream] }],
    routes: [
      {
        name: "echo",
        hosts: DEMO_HOSTS,
        paths: ["/echo"],
        service: "echo",
        // A registered, active device: unregistered-device is refused with unknown_device.
        auth: { trustStores: ["devices"], registry: "required" },
      },
      {
        name: "public-echo",
        hosts: DEMO_HOSTS,
        paths: ["/public/echo"],
        service: "echo",
        public: true,
        // In handshake mode only clients with a trusted certificate get this far.
        ...(options.mode === "handshake" ? { publicBehindHandshake: true } : {}),
      },
      {
        name: DEMO_LIMITED_ROUTE,
        hosts: DEMO_HOSTS,
        paths: [DEMO_LIMITED_PATH],
        service: "echo",
        auth: { trustStores: ["devices"], registry: "required" },
        // 5 requests per device per minute: the 6th is 429 rate_limited, with RateLimit and Retry-After.
        plugins: [{ name: "rate-limit", config: { limit: DEMO_RATE_LIMIT, window: "1m", by: "device" } }],
      },
      {
        // WebSocket (HTTP/1.1 Upgrade) to the echo service, which greets with the upgrade's headers and
        // echoes every message back.
        name: DEMO_WS_ROUTE,
        hosts: DEMO_HOSTS,
        paths: [DEMO_WS_PATH],
        service: "echo",
        auth: { trustStores: ["devices"], registry: "required" },
      },
    ],
    // EST (RFC 7030) under /.well-known/est/: a device presents a one-time token (`portcullis demo` makes
    // one for device-002, in enroll.token) and gets a certificate of the enrollment CA, 30 days long.
    ...(enroll
      ? {
          enrollment: {
            profiles: [
              {
                name: DEMO_ENROLL_PROFILE,
                ca: { cert: "enroll-ca.crt", key: "enroll-ca.key", chain: ["ca.crt"] },
                trustStore: "devices",
                bootstrap: { tokens: {} },
                validity: "30d",
                overlap: "1h",
                crlFile: ENROLL_CRL,
              },
            ],
          },
        }
      : {}),
    admin: { host: "127.0.0.1", port: options.adminPort, tokenFile: "admin.token" },
    store: { url: options.store },
    // One line per request, so that the demo's log shows who asked for what (off by default elsewhere).
    log: { access: true },
  };
}

export function demoConfigYaml(options: DemoConfigOptions): string {
  return [
    "# Portcullis demo configuration, written by `portcullis demo` (rewritten when its options change).",
    `# The echo service is the demo's built-in upstream; to run this file with \`portcullis start\`,`,
    `# start one first with \`portcullis echo --port ${new URL(options.upstream).port}\` or change its target.`,
    `# The mqtt listener bridges to the MQTT broker at ${options.mqttBroker ?? DEMO_MQTT_BROKER} (e.g. Mosquitto), which must be running.`,
    stringify(demoConfig(options)),
  ].join("\n");
}
