// `portcullis demo`: creates (or reuses) the demo PKI and config, starts the echo upstream and the
// gateway, and prints the curl commands that replay the seed proof of concept.
import { writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { loadConfig } from "../config/load.ts";
import type { ClientAuthMode } from "../config/schema.ts";
import { demoConfigYaml } from "../demo/demo-config.ts";
import { registerDemoDevice } from "../demo/demo-device.ts";
import { startEchoUpstream } from "../demo/echo-upstream.ts";
import { Gateway } from "../gateway/gateway.ts";
import { createLogger } from "../gateway/log.ts";
import { ensureDemoPki } from "../pki/demo-pki.ts";
import { openDeviceStore } from "../registry/open-store.ts";
import { shutdownSignal, stopOnSignal } from "./run-gateway.ts";
import { LOG_FD_ENV } from "./start.ts";
import { UsageError } from "./usage.ts";
import { parseWorkers, runWorkers } from "./workers.ts";

const HOST = "mtls.auth.local.com";

function portArg(name: string, value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535)
    throw new UsageError(`demo: --${name} must be a port number, got "${value}"`);
  return port;
}

export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      mode: { type: "string", default: "application" },
      port: { type: "string", default: "8443" },
      "admin-port": { type: "string", default: "8444" },
      dir: { type: "string", default: ".portcullis-demo" },
      upstream: { type: "string" },
      store: { type: "string", default: "sqlite:portcullis.db" },
      workers: { type: "string" },
    },
    strict: true,
  });
  if (values.mode !== "application" && values.mode !== "handshake") {
    throw new UsageError(`demo: --mode must be application or handshake, got "${values.mode}"`);
  }
  const mode: ClientAuthMode = values.mode;
  const port = portArg("port", values.port);
  const adminPort = portArg("admin-port", values["admin-port"]);
  if (values.upstream !== undefined && !URL.canParse(values.upstream)) {
    throw new UsageError(
      `demo: --upstream must be a URL such as http://127.0.0.1:3000, got "${values.upstream}"`,
    );
  }
  const signal = shutdownSignal();
  if (!/^(sqlite:.+|postgres(ql)?:\/\/.+)$/.test(values.store)) {
    throw new UsageError(`demo: --store must be sqlite:PATH or postgres://…, got "${values.store}"`);
  }
  const dir = resolve(values.dir);
  const pki = await ensureDemoPki(dir);
  const echo = values.upstream === undefined ? await startEchoUpstream() : undefined;
  const upstream = values.upstream ?? echo?.url ?? "";
  const configFile = join(dir, "portcullis.yaml");
  writeFileSync(configFile, demoConfigYaml({ mode, port, adminPort, upstream, store: values.store }));
  const config = await loadConfig(configFile);
  const workers = parseWorkers(values.workers);
  const show = (listenPort: number, listenAdmin: number) =>
    console.log(
      banner({ dir, mode, port: listenPort, adminPort: listenAdmin, upstream, echo: !!echo, workers }),
    );
  if (workers > 1) {
    const store = openDeviceStore(config.store.url);
    try {
      await store.migrate();
      await registerDemoDevice(store, pki.deviceCert, pki.deviceId);
    } finally {
      await store.close();
    }
    const code = await runWorkers(workers, ["start", "--config", configFile], {
      config,
      onListening: (m) => show(m.listeners[0]?.port ?? port, m.adminPort ?? adminPort),
      env: { [LOG_FD_ENV]: "2" },
    });
    await echo?.close();
    return code;
  }
  const logger = createLogger(config.logLevel, pino.destination({ fd: 2, sync: false }));
  let gateway: Gateway;
  try {
    gateway = await Gateway.start(config, logger);
  } catch (err) {
    await echo?.close();
    throw err;
  }
  const store = gateway.registry?.store;
  if (!store) throw new Error("the gateway has no device store");
  const device = await registerDemoDevice(store, pki.deviceCert, pki.deviceId);
  if (device.status !== "active") {
    logger.warn(
      { deviceId: device.id, status: device.status },
      "the demo device is not active in this store",
    );
  }
  gateway.watchConfig();
  process.on("SIGHUP", () => void gateway.reload());
  show(gateway.listeners[0]?.port ?? port, gateway.adminPort ?? adminPort);
  await stopOnSignal(gateway, signal, async () => {
    await echo?.close();
  });
  return 0;
}

function banner(o: {
  dir: string;
  mode: string;
  port: number;
  adminPort: number;
  upstream: string;
  echo: boolean;
  workers: number;
}) {
  const rel = relative(process.cwd(), o.dir) || ".";
  const curl = (cert: string, path: string, extra = "") =>
    `curl ${extra}--http2 --resolve ${HOST}:${o.port}:127.0.0.1 --cacert ca-chain.crt${cert ? ` --key ${cert}.key --cert ${cert}.crt` : ""} https://${HOST}:${o.port}${path}`;
  const appOnly =
    o.mode === "application"
      ? [
          '# no certificate: 401 {"message":"No required TLS certificate was sent","reason":"no_certificate"}',
          `  ${curl("", "/echo")}`,
          "# no certificate on a public route: 200",
          `  ${curl("", "/public/echo")}`,
        ]
      : [];
  return [
    `Portcullis demo — clientAuth ${o.mode}`,
    `  gateway   https://${HOST}:${o.port}  (also https://localhost:${o.port}, https://127.0.0.1:${o.port})`,
    `  admin     http://127.0.0.1:${o.adminPort}  (bearer token in admin.token)`,
    `  upstream  ${o.upstream}${o.echo ? "  (built-in echo)" : ""}`,
    `  files     ${o.dir}`,
    ...(o.workers > 1 ? [`  workers   ${o.workers} (node:cluster, one port)`] : []),
    "",
    `Try it (from ${rel}):`,
    `  cd ${rel}`,
    "# a registered device: 200 and the echoed request, with the x-forwarded-client-cert header the gateway set",
    `  ${curl("device", "/echo")}`,
    o.mode === "application"
      ? '# a certificate from a CA the gateway does not trust: HTTP/2 401 {"message":"TLS certificate failed verification",...}'
      : "# a certificate from a CA the gateway does not trust: the TLS handshake fails",
    `  ${curl("wrong-device", "/echo", "-v ")}`,
    ...appOnly,
    "# SNI names one host, the Host header another: 421 Misdirected Request",
    `  ${curl("device", "/echo", "-H 'Host: localhost' ")}`,
    "# the admin API",
    `  curl -H "Authorization: Bearer $(cat admin.token)" http://127.0.0.1:${o.adminPort}/status`,
    "",
    "Press Ctrl-C to stop.",
  ].join("\n");
}
