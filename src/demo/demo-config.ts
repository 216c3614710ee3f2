// The demo's portcullis.yaml: written next to the demo PKI with paths relative to itself, so that
// `portcullis start --config <dir>/portcullis.yaml` runs the same gateway.
import { stringify } from "yaml";
import type { ClientAuthMode, ConfigInput } from "../config/schema.ts";

export const DEMO_HOSTS = ["localhost", "127.0.0.1", "mtls.auth.local.com"];

export interface DemoConfigOptions {
  readonly mode: ClientAuthMode;
  readonly port: number;
  readonly adminPort: number;
  readonly upstream: string;
  /** `sqlite:PATH` (relative to the demo directory) or `postgres://…`. */
  readonly store: string;
}

export function demoConfig(options: DemoConfigOptions): ConfigInput {
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
    ],
    trustStores: [
      {
        name: "devices",
        ca: ["ca-chain.crt"],
        // The demo CRL lists revoked-device, and `portcullis pki revoke --dir <demo>/pki` rewrites it (watched);
        // strict: a device whose status cannot be established is refused.
        revocation: { mode: "strict", crl: { files: ["pki/crl.pem"], distributionPoints: false } },
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
    ],
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
    stringify(demoConfig(options)),
  ].join("\n");
}
