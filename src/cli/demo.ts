// `portcullis demo`: creates (or reuses) the demo PKI and config, starts the echo upstream and the
// gateway, and prints the curl commands that replay the seed proof of concept.
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { type AddressInfo, connect, createServer, type Server } from "node:net";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { pino } from "pino";
import { parse } from "yaml";
import { loadConfig } from "../config/load.ts";
import type { ClientAuthMode } from "../config/schema.ts";
import {
  DEMO_ENROLL_DEVICE,
  DEMO_ENROLL_PROFILE,
  DEMO_LIMITED_PATH,
  DEMO_MQTT_BROKER,
  DEMO_MQTT_LISTENER,
  DEMO_MQTT_PORT,
  DEMO_RATE_LIMIT,
  DEMO_WS_PATH,
  demoConfigYaml,
  demoHasEnrollment,
} from "../demo/demo-config.ts";
import { registerDemoDevice } from "../demo/demo-device.ts";
import { startEchoUpstream } from "../demo/echo-upstream.ts";
import { newEnrollmentToken } from "../enrollment/tokens.ts";
import { Gateway } from "../gateway/gateway.ts";
import { createLogger } from "../gateway/log.ts";
import { ensureDemoPki } from "../pki/demo-pki.ts";
import { KEY_FILE_MODE, writeFileAtomic } from "../pki/files.ts";
import { type RegistryStore, TokenNotFoundError } from "../registry/enrollment-types.ts";
import { openDeviceStore } from "../registry/open-store.ts";
import { shutdownSignal, stopOnSignal } from "./run-gateway.ts";
import { LOG_FD_ENV } from "./start.ts";
import { UsageError } from "./usage.ts";
import { parseWorkers, runWorkers } from "./workers.ts";

const HOST = "mtls.auth.local.com";

/** The built-in echo upstream's preferred port, when neither --echo-port nor an earlier run chose one. */
export const DEMO_ECHO_PORT = 8445;

interface PreviousConfig {
  services?: { name?: string; targets?: string[] }[];
  listeners?: { name?: string; port?: unknown }[];
}

function previousConfig(dir: string): PreviousConfig | undefined {
  try {
    return parse(readFileSync(join(dir, "portcullis.yaml"), "utf8")) as PreviousConfig;
  } catch {
    return undefined;
  }
}

/** The echo port an earlier demo wrote into this directory's config, so that a new run keeps the config. */
function previousEchoPort(dir: string): number | undefined {
  try {
    const target = previousConfig(dir)?.services?.find((s) => s.name === "echo")?.targets?.[0];
    if (target === undefined) return undefined;
    const url = new URL(target);
    return url.hostname === "127.0.0.1" && url.port !== "" ? Number(url.port) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The built-in echo upstream's port: --echo-port; else the one this directory's config names (a new run
 * leaves the config, and a `portcullis start` on it, as they were); else 8445, or any free port when 8445
 * is taken (another demo in another directory).
 */
async function chooseEchoPort(dir: string, flag: string | undefined): Promise<number> {
  if (flag !== undefined) return portArg("echo-port", flag);
  const previous = previousEchoPort(dir);
  if (previous !== undefined) return previous;
  return (await portFree("127.0.0.1", DEMO_ECHO_PORT)) ? DEMO_ECHO_PORT : 0;
}

/** The MQTT listener's port an earlier demo wrote into this directory's config. */
function previousMqttPort(dir: string): number | undefined {
  const port = previousConfig(dir)?.listeners?.find((l) => l.name === DEMO_MQTT_LISTENER)?.port;
  return typeof port === "number" && Number.isSafeInteger(port) && port > 0 && port <= 65535
    ? port
    : undefined;
}

/**
 * The MQTT listener's port: --mqtt-port; else the one this directory's config names; else 8883, or another
 * free port when 8883 is taken (another demo in another directory). A port chosen here is held (`reserved`)
 * until the gateway binds it, so that two demos starting together do not both pick it.
 */
async function chooseMqttPort(
  dir: string,
  flag: string | undefined,
  others: readonly number[],
): Promise<{ port: number; reserved?: Server }> {
  if (flag !== undefined) return { port: portArg("mqtt-port", flag) };
  const previous = previousMqttPort(dir);
  if (previous !== undefined) return { port: previous };
  const preferred = others.includes(DEMO_MQTT_PORT) ? undefined : await reserve(DEMO_MQTT_PORT);
  const reserved = preferred ?? (await reserve(0));
  if (!reserved) throw new Error("demo: found no free port for the MQTT listener");
  return { port: (reserved.address() as AddressInfo).port, reserved };
}

/** A server bound to `port` on 127.0.0.1 (0: any free port), or undefined when the port is taken. */
function reserve(port: number): Promise<Server | undefined> {
  return new Promise((done) => {
    const server = createServer();
    server.once("error", () => done(undefined));
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => done(server));
  });
}

function release(server: Server | undefined): Promise<void> {
  return new Promise((done) => (server?.listening ? server.close(() => done()) : done()));
}

/** Whether something accepts TCP connections at the broker's address (within a second). */
function brokerAnswers(broker: string): Promise<boolean> {
  const url = new URL(broker);
  return new Promise((done) => {
    const socket = connect({ host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 1883) });
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(1000, () => finish(false));
    socket.once("connect", () => finish(true));
    socket.once("error", () => finish(false));
  });
}

/** In the demo directory while a demo runs there: its process id. */
const PID_FILE = "demo.pid";

/** The pid of a demo still running in `dir`, if its pid file names a live process other than this one. */
function runningDemo(dir: string): number | undefined {
  const file = join(dir, PID_FILE);
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").trim());
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    // EPERM: alive, but another user's.
    return (err as NodeJS.ErrnoException).code === "EPERM" ? pid : undefined;
  }
}

/** Resolves if `port` can be bound on `host` now (then frees it at once); a port of 0 always can. */
function portFree(host: string, port: number): Promise<boolean> {
  if (port === 0) return Promise.resolve(true);
  return new Promise((done) => {
    const probe = createServer();
    probe.once("error", () => done(false));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => done(true)));
  });
}

/**
 * Refuses to start, before anything is written, when a demo already runs in `dir` or one of the ports is
 * taken: a second `npm start` must leave a running demo (and its config) alone.
 */
async function checkDemoCanStart(
  dir: string,
  ports: readonly { what: string; flag: string; port: number; checked?: boolean }[],
): Promise<void> {
  const pid = runningDemo(dir);
  if (pid !== undefined) {
    throw new UsageError(
      `demo: a demo is already running in ${dir} (pid ${pid}); stop it (Ctrl-C) first, or use another --dir and other ports`,
    );
  }
  const seen = new Map<number, string>();
  for (const { flag, port } of ports) {
    const other = seen.get(port);
    if (port !== 0 && other !== undefined) {
      throw new UsageError(`demo: --${other} and --${flag} are both ${port}; give each its own port`);
    }
    seen.set(port, flag);
  }
  for (const { what, flag, port, checked } of ports) {
    if (checked) continue;
    if (!(await portFree("127.0.0.1", port))) {
      throw new UsageError(
        `demo: port ${port} (${what}) on 127.0.0.1 is already in use; stop what uses it or pass another --${flag}`,
      );
    }
  }
}

/** Writes the config only when its text changed, so that a running gateway watching it is not reloaded. */
function writeIfChanged(file: string, text: string): void {
  if (existsSync(file) && readFileSync(file, "utf8") === text) return;
  writeFileSync(file, text);
}

/** In the demo directory: the one-time enrollment token of the demo's new device, `<id>.<secret>`. */
export const ENROLL_TOKEN_FILE = "enroll.token";
const ENROLL_TOKEN_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Makes a fresh one-time enrollment token for device-002 and writes it to enroll.token (0600), after
 * revoking the one the file held: each start hands out one usable token. A token also re-enrolls a device
 * that an earlier run enrolled (while it is active).
 */
async function issueDemoEnrollmentToken(store: RegistryStore, dir: string): Promise<void> {
  const file = join(dir, ENROLL_TOKEN_FILE);
  const now = new Date();
  const previous = existsSync(file) ? readFileSync(file, "utf8").trim() : "";
  const previousId = /^(tok_[0-9a-f]{16})\./.exec(previous)?.[1];
  if (previousId !== undefined) {
    try {
      await store.revokeEnrollmentToken(previousId, now);
    } catch (err) {
      // Made in another store (--store changed, or the database was deleted): nothing to revoke.
      if (!(err instanceof TokenNotFoundError)) throw err;
    }
  }
  const token = newEnrollmentToken();
  await store.createEnrollmentToken({
    id: token.id,
    secretHash: token.secretHash,
    deviceId: DEMO_ENROLL_DEVICE,
    profile: DEMO_ENROLL_PROFILE,
    expiresAt: new Date(now.getTime() + ENROLL_TOKEN_TTL_MS),
  });
  writeFileAtomic(file, `${token.token}\n`, KEY_FILE_MODE);
}

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
      "echo-port": { type: "string" },
      "mqtt-port": { type: "string" },
      "mqtt-broker": { type: "string", default: DEMO_MQTT_BROKER },
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
  const mqttBroker = values["mqtt-broker"];
  if (!/^mqtt:\/\/[^/]+\/?$/.test(mqttBroker) || !URL.canParse(mqttBroker)) {
    throw new UsageError(
      `demo: --mqtt-broker must be a URL such as ${DEMO_MQTT_BROKER}, got "${mqttBroker}"`,
    );
  }
  const signal = shutdownSignal();
  if (!/^(sqlite:.+|postgres(ql)?:\/\/.+)$/.test(values.store)) {
    throw new UsageError(`demo: --store must be sqlite:PATH or postgres://…, got "${values.store}"`);
  }
  const dir = resolve(values.dir);
  const echoPort = await chooseEchoPort(dir, values["echo-port"]);
  const mqtt = await chooseMqttPort(dir, values["mqtt-port"], [port, adminPort, echoPort]);
  const mqttPort = mqtt.port;
  try {
    await checkDemoCanStart(dir, [
      { what: "gateway listener demo", flag: "port", port },
      { what: "admin listener", flag: "admin-port", port: adminPort },
      ...(values.upstream === undefined
        ? [{ what: "built-in echo upstream", flag: "echo-port", port: echoPort }]
        : []),
      { what: "MQTT listener mqtt", flag: "mqtt-port", port: mqttPort, checked: !!mqtt.reserved },
    ]);
  } catch (err) {
    await release(mqtt.reserved);
    throw err;
  }
  try {
    return await runDemoIn(
      dir,
      { mode, port, adminPort, echoPort, mqttPort, mqttBroker, values, signal },
      mqtt.reserved,
    );
  } finally {
    await release(mqtt.reserved);
  }
}

async function runDemoIn(
  dir: string,
  o: {
    mode: ClientAuthMode;
    port: number;
    adminPort: number;
    echoPort: number;
    mqttPort: number;
    mqttBroker: string;
    values: { upstream?: string; store: string; workers?: string };
    signal: ReturnType<typeof shutdownSignal>;
  },
  reserved: Server | undefined,
): Promise<number> {
  const { mode, port, adminPort, echoPort, mqttPort, mqttBroker, values, signal } = o;
  const pki = await ensureDemoPki(dir);
  const pidFile = join(dir, PID_FILE);
  writeFileSync(pidFile, `${process.pid}\n`);
  process.once("exit", () => {
    try {
      if (readFileSync(pidFile, "utf8").trim() === String(process.pid)) rmSync(pidFile, { force: true });
    } catch {
      // Already gone.
    }
  });
  const echo = values.upstream === undefined ? await startEchoUpstream(echoPort) : undefined;
  const upstream = values.upstream ?? echo?.url ?? "";
  const configFile = join(dir, "portcullis.yaml");
  writeIfChanged(
    configFile,
    demoConfigYaml({ mode, port, adminPort, upstream, mqttPort, mqttBroker, store: values.store }),
  );
  const config = await loadConfig(configFile);
  const workers = parseWorkers(values.workers);
  const brokerUp = await brokerAnswers(mqttBroker);
  const show = (listenPort: number, listenAdmin: number, listenMqtt: number) =>
    console.log(
      banner({
        dir,
        mode,
        port: listenPort,
        adminPort: listenAdmin,
        upstream,
        echo: !!echo,
        workers,
        mqttPort: listenMqtt,
        mqttBroker,
        brokerUp,
      }),
    );
  const mqttPortOf = (listeners: readonly { name: string; port: number }[]) =>
    listeners.find((l) => l.name === DEMO_MQTT_LISTENER)?.port ?? mqttPort;
  // The gateway binds the MQTT port next: let go of it.
  await release(reserved);
  if (workers > 1) {
    const store = openDeviceStore(config.store.url);
    try {
      await store.migrate();
      await registerDemoDevice(store, pki.deviceCert, pki.deviceId);
      if (demoHasEnrollment(mode)) await issueDemoEnrollmentToken(store, dir);
    } finally {
      await store.close();
    }
    const code = await runWorkers(workers, ["start", "--config", configFile], {
      config,
      onListening: (m) =>
        show(m.listeners[0]?.port ?? port, m.adminPort ?? adminPort, mqttPortOf(m.listeners)),
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
  const store = gateway.store;
  if (!store) throw new Error("the gateway has no device store");
  const device = await registerDemoDevice(store, pki.deviceCert, pki.deviceId);
  if (demoHasEnrollment(mode)) await issueDemoEnrollmentToken(store, dir);
  if (device.status !== "active") {
    logger.warn(
      { deviceId: device.id, status: device.status },
      "the demo device is not active in this store",
    );
  }
  gateway.watchConfig();
  process.on("SIGHUP", () => void gateway.reload());
  show(gateway.listeners[0]?.port ?? port, gateway.adminPort ?? adminPort, mqttPortOf(gateway.listeners));
  await stopOnSignal(gateway, signal, async () => {
    await echo?.close();
  });
  return 0;
}

/** The banner's enrollment lines: the EST commands of device-002, or why there are none. */
function enrollBlock(mode: string, port: number, curl: (cert: string, path: string) => string): string[] {
  if (!demoHasEnrollment(mode as ClientAuthMode)) {
    return [
      "# no enrollment (EST) in handshake mode: a device without a certificate cannot reach the listener",
    ];
  }
  const id = DEMO_ENROLL_DEVICE;
  return [
    `# enroll a new device (EST, with the one-time token for ${id} in ${ENROLL_TOKEN_FILE}), then call as it: 200`,
    `  npx portcullis enroll --server https://localhost:${port} --ca ca.crt --token "$(cat ${ENROLL_TOKEN_FILE})" --id ${id} --out enrolled`,
    `  ${curl(`enrolled/${id}`, "/echo")}`,
  ];
}

/**
 * How the banner's WebSocket one-liner loads `ws`: by name where Node finds it from the demo directory (the
 * default one, inside the project), else by the path of the copy Portcullis uses.
 */
function wsModule(dir: string): string {
  try {
    createRequire(join(dir, "noop.js")).resolve("ws");
    return "ws";
  } catch {
    return createRequire(import.meta.url).resolve("ws");
  }
}

/** The banner's WebSocket lines: device-001 opens /ws/echo, gets the echo's greeting, then its message back. */
function wsBlock(o: { dir: string; port: number; echo: boolean }): string[] {
  if (!o.echo) return [];
  const script = [
    `const fs=require('fs'),W=require('${wsModule(o.dir)}');`,
    `const ws=new W('wss://localhost:${o.port}${DEMO_WS_PATH}',{ca:fs.readFileSync('ca-chain.crt'),cert:fs.readFileSync('device.crt'),key:fs.readFileSync('device.key')});`,
    "ws.on('message',m=>{const t=String(m);if(t[0]==='{'){console.log('greeting, x-device-id:',JSON.parse(t).headers['x-device-id']);ws.send('hello')}else{console.log('echo:',t);ws.close()}});",
    "ws.on('unexpected-response',(q,r)=>{console.log(r.statusCode);r.pipe(process.stdout)})",
  ].join("");
  return [
    `# WebSocket on ${DEMO_WS_PATH} (HTTP/1.1 Upgrade; the echo greets with the headers it got, then echoes): greeting, x-device-id: device-001 / echo: hello`,
    `  node -e "${script}"`,
  ];
}

/** The banner's MQTT lines: device-001 publishes under its own topics; a device not in the registry is refused. */
function mqttBlock(o: { mqttPort: number; mqttBroker: string; brokerUp: boolean }): string[] {
  const pub = (cert: string, topic: string, extra = "") =>
    `mosquitto_pub -h localhost -p ${o.mqttPort} --cafile ca.crt --cert ${cert}.crt --key ${cert}.key ${extra}-t ${topic} -m 21.5 -q 1`;
  const id = "device-001";
  return [
    o.brokerUp
      ? `# MQTT (through the broker at ${o.mqttBroker}): ${id} publishes under devices/${id}/ (silent, exit 0; -d shows the PUBACK)`
      : `# MQTT needs a broker at ${o.mqttBroker}, and none answers yet (until one does: "Connection Refused: broker unavailable"): start Mosquitto there, or pass --mqtt-broker URL. Then ${id} publishes under devices/${id}/ (silent, exit 0)`,
    `  ${pub("device", `devices/${id}/temperature`)}`,
    "# a trusted certificate of a device not in the registry: Connection error: Connection Refused: not authorised.",
    `  ${pub("unregistered-device", "devices/unregistered-device/temperature")}`,
    "# another device's topic (MQTT 5): Warning: Publish 1 failed: Not authorized. (reason topic_not_allowed)",
    `  ${pub("device", "devices/device-002/temperature", "-V mqttv5 ")}`,
  ];
}

function banner(o: {
  dir: string;
  mode: string;
  port: number;
  adminPort: number;
  upstream: string;
  echo: boolean;
  workers: number;
  mqttPort: number;
  mqttBroker: string;
  brokerUp: boolean;
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
    `  mqtt      mqtts://localhost:${o.mqttPort}  (bridged to ${o.mqttBroker}${o.brokerUp ? "" : ", which does not answer yet"})`,
    `  admin     http://127.0.0.1:${o.adminPort}  (bearer token in admin.token)`,
    `  console   http://127.0.0.1:${o.adminPort}/console/  (web console: log in with the token in admin.token)`,
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
    `# rate limit: ${DEMO_RATE_LIMIT} requests per device and minute on ${DEMO_LIMITED_PATH}; the ${DEMO_RATE_LIMIT + 1}th is 429 rate_limited, with RateLimit and Retry-After`,
    `  for i in $(seq ${DEMO_RATE_LIMIT + 1}); do ${curl("device", DEMO_LIMITED_PATH, "-s -o /dev/null -D - ")} | grep -iE '^(HTTP|ratelimit|retry-after)'; done`,
    ...wsBlock(o),
    ...enrollBlock(o.mode, o.port, curl),
    ...mqttBlock(o),
    "# the admin API",
    `  curl -H "Authorization: Bearer $(cat admin.token)" http://127.0.0.1:${o.adminPort}/status`,
    `# the web console (fleet, live denials, certificate expiry, trust): open http://127.0.0.1:${o.adminPort}/console/ and paste the token that this prints`,
    "  cat admin.token",
    "",
    "Press Ctrl-C to stop.",
  ].join("\n");
}
