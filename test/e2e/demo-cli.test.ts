// The demo and CLI contracts of DESIGN.md: the pinned runtime, the admin listener behind its token,
// --upstream, and a demo directory that is reused as it is.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import mqtt from "mqtt";
import { parse } from "yaml";
import { curl } from "../helpers/clients.ts";
import { type GatewayProcess, ROOT, runCli, startDemo, tempDir } from "../helpers/gateway-process.ts";

describe("portcullis CLI runtime", () => {
  test("the CLI runs on the pinned Node.js 24", async () => {
    const r = await runCli(["version"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^portcullis \d+\.\d+\.\d+ \(node v24\./);
  });

  test("started by an older system node, the launcher re-executes on the pinned Node.js 24", async (t) => {
    const systemNode = ["/usr/bin/node", "/usr/local/bin/node"].find((p) => existsSync(p));
    if (!systemNode) {
      t.skip("no system node on this machine");
      return;
    }
    const out = await new Promise<string>((resolve, reject) =>
      execFile(systemNode, [join(ROOT, "bin", "portcullis.js"), "version"], (err, stdout) =>
        err ? reject(err) : resolve(stdout),
      ),
    );
    assert.match(out, /\(node v24\./);
  });
});

describe("portcullis demo with --upstream, admin API and a reused directory", () => {
  const tmp = tempDir();
  const upstream = createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ from: "custom-upstream", path: req.url, device: req.headers["x-device-id"] }));
  });
  let gw: GatewayProcess;
  let firstToken = "";
  let firstDevice = "";

  before(async () => {
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const { port } = upstream.address() as AddressInfo;
    gw = await startDemo(tmp.dir);
    firstToken = readFileSync(join(tmp.dir, "admin.token"), "utf8");
    firstDevice = readFileSync(join(tmp.dir, "device.crt"), "utf8");
    assert.equal(await gw.stop(), 0);
    gw = await startDemo(tmp.dir, ["--upstream", `http://127.0.0.1:${port}`]);
  });
  after(async () => {
    await gw.stop();
    upstream.close();
    tmp.cleanup();
  });

  test("a second demo run reuses the directory: same token, same device certificate", () => {
    assert.equal(readFileSync(join(tmp.dir, "admin.token"), "utf8"), firstToken);
    assert.equal(readFileSync(join(tmp.dir, "device.crt"), "utf8"), firstDevice);
  });

  test("--upstream puts the demo routes in front of an existing service", async () => {
    const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "device" });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json(), { from: "custom-upstream", path: "/echo", device: "device-001" });
  });

  test("the demo's /limited/echo allows a device 5 requests a minute: the 6th is 429 with RateLimit and Retry-After", async () => {
    const config = parse(readFileSync(join(tmp.dir, "portcullis.yaml"), "utf8")) as {
      routes: {
        name: string;
        paths: string[];
        plugins?: { name: string; config: Record<string, unknown> }[];
      }[];
    };
    const limited = config.routes.find((r) => r.paths.includes("/limited/echo"));
    assert.deepEqual(limited?.plugins, [
      { name: "rate-limit", config: { limit: 5, window: "1m", by: "device" } },
    ]);
    assert.match(gw.output(), /for i in \$\(seq 6\); do curl .*\/limited\/echo/, "the banner shows the loop");
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof curl>> | undefined;
    for (let i = 0; i < 6; i++) {
      last = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "device", path: "/limited/echo" });
      statuses.push(last.status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429], last?.body);
    assert.deepEqual(last?.json(), { message: "API rate limit exceeded", reason: "rate_limited" });
    assert.match(last?.headers.ratelimit ?? "", /^limit=5, remaining=0, reset=\d+$/);
    assert.match(last?.headers["retry-after"] ?? "", /^\d+$/);
    // The limit is the route's: /echo still answers the same device.
    const other = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "device", path: "/echo" });
    assert.equal(other.status, 200, other.body);
  });

  test("the admin listener serves GET /status behind the bearer token", async () => {
    const url = `http://127.0.0.1:${gw.adminPort}/status`;
    const token = firstToken.trim();
    const ok = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200);
    const status = (await ok.json()) as { status: string; listeners: { port: number; clientAuth: string }[] };
    assert.equal(status.status, "ok");
    assert.equal(status.listeners[0]?.port, gw.ports.demo);
    assert.equal(status.listeners[0]?.clientAuth, "application");
    for (const authorization of [
      undefined,
      "Bearer wrong-token-0123456789",
      `Basic ${token}`,
      `Bearer ${token}x`,
    ]) {
      const denied = await fetch(url, { headers: authorization ? { authorization } : {} });
      assert.equal(denied.status, 401, String(authorization));
      assert.deepEqual(await denied.json(), { message: "Unauthorized" });
    }
  });
});

/** Ports free right now (bound on 127.0.0.1 and released: another process may take one), for a demo on fixed ports. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      const server = createServer();
      return new Promise<ReturnType<typeof createServer>>((resolve) =>
        server.listen(0, "127.0.0.1", () => resolve(server)),
      );
    }),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

describe("the built-in echo port without --echo-port", () => {
  test("two demos in two directories both start; a restart keeps the port its config names", async () => {
    const a = tempDir();
    const b = tempDir();
    const echoPortOf = (dir: string) =>
      /http:\/\/127\.0\.0\.1:(\d+)/.exec(readFileSync(join(dir, "portcullis.yaml"), "utf8"))?.[1];
    let first: GatewayProcess | undefined;
    let second: GatewayProcess | undefined;
    try {
      first = await startDemo(a.dir, [], { defaultEchoPort: true });
      second = await startDemo(b.dir, [], { defaultEchoPort: true });
      for (const [gw, dir] of [
        [first, a.dir],
        [second, b.dir],
      ] as const) {
        const r = await curl({ port: gw.ports.demo ?? 0, dir, device: "device" });
        assert.equal(r.status, 200, r.body);
      }
      assert.notEqual(echoPortOf(a.dir), echoPortOf(b.dir), "each demo has its own echo port");
      // Without --mqtt-port too: 8883 for the first (when free), another port for the second, each in its
      // config and its banner.
      const mqttPorts = [first, second].map((gw, i) => {
        const port = mqttListenerOf(i === 0 ? a.dir : b.dir)?.port;
        assert.ok(typeof port === "number" && port > 0, String(port));
        assert.ok(gw.output().includes(`mqtts://localhost:${port}`), gw.output());
        return port;
      });
      assert.notEqual(mqttPorts[0], mqttPorts[1], "each demo has its own MQTT port");
      const before = readFileSync(join(b.dir, "portcullis.yaml"), "utf8");
      assert.equal(await second.stop(), 0);
      second = await startDemo(b.dir, [], { defaultEchoPort: true });
      assert.equal(readFileSync(join(b.dir, "portcullis.yaml"), "utf8"), before, "the config is unchanged");
      const r = await curl({ port: second.ports.demo ?? 0, dir: b.dir, device: "device" });
      assert.equal(r.status, 200, r.body);
    } finally {
      await first?.stop();
      await second?.stop();
      a.cleanup();
      b.cleanup();
    }
  });
});

describe("a second `portcullis demo` against a running one", () => {
  const tmp = tempDir();
  let gw: GatewayProcess;
  let args: string[] = [];

  before(async () => {
    // Fixed ports, free when picked: a parallel test may bind one first (the demo then names it and
    // exits before writing anything), so pick again.
    for (let attempt = 1; ; attempt++) {
      const [port, admin, echo, mqtt] = await freePorts(4);
      args = [
        ...["--port", String(port), "--admin-port", String(admin)],
        ...["--echo-port", String(echo), "--mqtt-port", String(mqtt)],
      ];
      try {
        gw = await startDemo(tmp.dir, args);
        break;
      } catch (err) {
        if (attempt >= 5 || !/port \d+ \(/.test(String(err))) throw err;
      }
    }
  });
  after(async () => {
    await gw.stop();
    tmp.cleanup();
  });

  test("is refused before it writes anything, and the first demo keeps serving /echo", async () => {
    const config = join(tmp.dir, "portcullis.yaml");
    const before = readFileSync(config, "utf8");
    const second = await runCli(["demo", "--dir", tmp.dir, ...args]);
    assert.equal(second.code, 2, second.stderr);
    assert.match(second.stderr, /a demo is already running in .* \(pid \d+\)/);
    assert.equal(readFileSync(config, "utf8"), before, "the running demo's config is left alone");
    const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "device" });
    assert.equal(r.status, 200, r.body);
  });

  test("in another directory, a taken port is named before anything is written", async () => {
    const other = tempDir();
    try {
      const second = await runCli(["demo", "--dir", other.dir, ...args]);
      assert.equal(second.code, 2, second.stderr);
      assert.match(second.stderr, new RegExp(`port ${gw.ports.demo} \\(gateway listener demo\\)`));
      assert.equal(existsSync(join(other.dir, "portcullis.yaml")), false);
    } finally {
      other.cleanup();
    }
  });

  test("in another directory, a taken --mqtt-port is named before anything is written", async () => {
    const other = tempDir();
    try {
      const mqttPort = args[args.indexOf("--mqtt-port") + 1];
      const [port, admin, echo] = await freePorts(3);
      const second = await runCli([
        ...["demo", "--dir", other.dir, "--port", String(port), "--admin-port", String(admin)],
        ...["--echo-port", String(echo), "--mqtt-port", String(mqttPort)],
      ]);
      assert.equal(second.code, 2, second.stderr);
      assert.match(second.stderr, new RegExp(`port ${mqttPort} \\(MQTT listener mqtt\\).*--mqtt-port`));
      assert.equal(existsSync(join(other.dir, "portcullis.yaml")), false);
      assert.equal(existsSync(join(other.dir, "ca.crt")), false);
    } finally {
      other.cleanup();
    }
  });

  test("the demo config uses the fixed echo port it was given", () => {
    const echo = args[args.indexOf("--echo-port") + 1];
    assert.match(
      readFileSync(join(tmp.dir, "portcullis.yaml"), "utf8"),
      new RegExp(`127\\.0\\.0\\.1:${echo}`),
    );
  });
});

describe("the demo's enrollment (EST): a one-time token for device-002 at each start", () => {
  const tmp = tempDir();
  const tokenFile = join(tmp.dir, "enroll.token");
  let gw: GatewayProcess;
  let firstToken = "";

  before(async () => {
    gw = await startDemo(tmp.dir);
  });
  after(async () => {
    await gw.stop();
    tmp.cleanup();
  });

  test("the banner's WebSocket one-liner on /ws/echo gets the greeting as device-001, then its echo", async () => {
    const line = gw
      .output()
      .split("\n")
      .find((l) => l.trim().startsWith("node -e") && l.includes("/ws/echo"));
    assert.ok(line, "the banner prints a WebSocket command");
    const run = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile("bash", ["-c", line.trim()], { cwd: tmp.dir, timeout: 20_000 }, (err, stdout) =>
        resolve({ code: err ? 1 : 0, stdout }),
      );
    });
    assert.equal(run.code, 0, run.stdout);
    assert.equal(run.stdout, "greeting, x-device-id: device-001\necho: hello\n");
  });

  test("the demo writes enroll.token (0600) and prints the enroll command", () => {
    firstToken = readFileSync(tokenFile, "utf8");
    assert.match(firstToken, /^tok_[0-9a-f]{16}\.[A-Za-z0-9_-]{43}\n$/);
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    const out = gw.output();
    assert.ok(
      out.includes(
        `npx portcullis enroll --server https://localhost:${gw.ports.demo} --ca ca.crt --token "$(cat enroll.token)" --id device-002 --out enrolled`,
      ),
      out,
    );
    assert.match(out, /--key enrolled\/device-002\.key --cert enrolled\/device-002\.crt https:\/\/\S+\/echo/);
  });

  test("the token enrolls device-002, which then gets the echo", async () => {
    const out = join(tmp.dir, "enrolled");
    const enroll = await runCli([
      "enroll",
      "--server",
      `https://localhost:${gw.ports.demo}`,
      "--ca",
      join(tmp.dir, "ca.crt"),
      "--token",
      readFileSync(tokenFile, "utf8").trim(),
      "--id",
      "device-002",
      "--out",
      out,
    ]);
    assert.equal(enroll.code, 0, enroll.stderr);
    const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "enrolled/device-002" });
    assert.equal(r.status, 200, r.body);
    assert.equal((r.json() as { headers: Record<string, string> }).headers["x-device-id"], "device-002");
  });

  test("a second start replaces the token and revokes the first one", async () => {
    assert.equal(await gw.stop(), 0);
    gw = await startDemo(tmp.dir);
    const second = readFileSync(tokenFile, "utf8");
    assert.notEqual(second, firstToken);
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    const adminToken = readFileSync(join(tmp.dir, "admin.token"), "utf8").trim();
    const res = await fetch(`http://127.0.0.1:${gw.adminPort}/enrollment-tokens`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    assert.equal(res.status, 200);
    const { tokens } = (await res.json()) as { tokens: { id: string; deviceId: string; state: string }[] };
    const state = (token: string) => tokens.find((t) => t.id === token.split(".")[0])?.state;
    assert.equal(state(firstToken), "revoked");
    assert.equal(state(second), "active");
    assert.ok(tokens.every((t) => t.deviceId === "device-002"));
  });
});

describe("the demo in handshake mode", () => {
  test("has no enrollment, and says so in one line", async () => {
    const tmp = tempDir();
    let gw: GatewayProcess | undefined;
    try {
      gw = await startDemo(tmp.dir, ["--mode", "handshake"]);
      assert.equal(existsSync(join(tmp.dir, "enroll.token")), false);
      assert.doesNotMatch(readFileSync(join(tmp.dir, "portcullis.yaml"), "utf8"), /enroll/);
      const lines = gw.output().split("\n");
      assert.equal(lines.filter((l) => /enrollment/.test(l)).length, 1);
      assert.ok(!gw.output().includes("portcullis enroll"));
    } finally {
      await gw?.stop();
      tmp.cleanup();
    }
  });
});

/** The demo config's MQTT listener. */
function mqttListenerOf(dir: string): Record<string, unknown> | undefined {
  const config = parse(readFileSync(join(dir, "portcullis.yaml"), "utf8")) as {
    listeners: Record<string, unknown>[];
  };
  return config.listeners.find((l) => l.name === "mqtt");
}

/** Whether the shared Mosquitto broker (and its command-line clients) are here to try the banner's commands. */
async function mosquittoHere(): Promise<boolean> {
  const clients = ["/usr/bin/mosquitto_pub", "/usr/bin/mosquitto_sub"].every((p) => existsSync(p));
  if (!clients) return false;
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port: 1883 });
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Runs one of the banner's shell commands in the demo directory. */
function sh(command: string, cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("sh", ["-c", command], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("the demo's MQTT listener", () => {
  const tmp = tempDir();
  let gw: GatewayProcess;
  let mqttPort = 0;
  /** The banner's mosquitto_pub commands, in order: device-001, unregistered-device, another device's topic. */
  let commands: string[] = [];

  before(async () => {
    for (let attempt = 1; ; attempt++) {
      [mqttPort] = (await freePorts(1)) as [number];
      try {
        gw = await startDemo(tmp.dir, ["--mqtt-port", String(mqttPort)]);
        break;
      } catch (err) {
        if (attempt >= 5 || !/port \d+ \(/.test(String(err))) throw err;
      }
    }
    commands = gw
      .output()
      .split("\n")
      .filter((l) => l.startsWith("  mosquitto_pub "))
      .map((l) => l.trim());
  });
  after(async () => {
    await gw.stop();
    tmp.cleanup();
  });

  test("the config has an mqtt listener on --mqtt-port, like the demo listener, bridged to the broker", () => {
    const demo = (
      parse(readFileSync(join(tmp.dir, "portcullis.yaml"), "utf8")) as {
        listeners: Record<string, unknown>[];
      }
    ).listeners[0];
    assert.deepEqual(mqttListenerOf(tmp.dir), {
      name: "mqtt",
      protocol: "mqtt",
      host: "127.0.0.1",
      port: mqttPort,
      clientAuth: demo?.clientAuth,
      certificates: demo?.certificates,
      trustStores: ["devices"],
      mqtt: {
        broker: "mqtt://127.0.0.1:1883",
        auth: { trustStores: ["devices"], registry: "required" },
        topics: { publish: ["devices/{deviceId}/#"], subscribe: ["devices/{deviceId}/#"] },
      },
    });
  });

  test("the banner prints mosquitto_pub for device-001 and two denials", () => {
    const out = gw.output();
    assert.ok(
      out.includes(`  mqtt      mqtts://localhost:${mqttPort}  (bridged to mqtt://127.0.0.1:1883`),
      out,
    );
    const common = `mosquitto_pub -h localhost -p ${mqttPort} --cafile ca.crt`;
    assert.deepEqual(commands, [
      `${common} --cert device.crt --key device.key -t devices/device-001/temperature -m 21.5 -q 1`,
      `${common} --cert unregistered-device.crt --key unregistered-device.key -t devices/unregistered-device/temperature -m 21.5 -q 1`,
      `${common} --cert device.crt --key device.key -V mqttv5 -t devices/device-002/temperature -m 21.5 -q 1`,
    ]);
    assert.match(
      out,
      /# a trusted certificate of a device not in the registry: Connection error: Connection Refused: not authorised\./,
    );
  });

  test("the printed commands work against the demo and the broker", async (t) => {
    if (!(await mosquittoHere())) {
      t.skip("no Mosquitto broker on 127.0.0.1:1883 or no mosquitto clients");
      return;
    }
    // A subscriber at the broker (MQTT.js) sees device-001's message, with a payload of this run's own.
    const payload = `demo-${process.pid}-${Date.now()}`;
    const sub = await mqtt.connectAsync("mqtt://127.0.0.1:1883", { reconnectPeriod: 0 });
    try {
      const arrived = new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("the broker never got the message")), 10_000);
        sub.on("message", (topic, message) => {
          if (message.toString() !== payload) return;
          clearTimeout(timer);
          resolve(topic);
        });
      });
      await sub.subscribeAsync("devices/device-001/temperature", { qos: 1 });
      const [ok, unregistered, otherTopic] = commands as [string, string, string];
      const published = await sh(ok.replace("-m 21.5", `-m ${payload}`), tmp.dir);
      assert.equal(published.code, 0, published.stderr);
      assert.equal(await arrived, "devices/device-001/temperature");

      const refused = await sh(unregistered, tmp.dir);
      assert.equal(refused.code, 5, refused.stderr);
      assert.match(refused.stderr, /Connection error: Connection Refused: not authorised\./);

      const denied = await sh(otherTopic, tmp.dir);
      assert.match(denied.stderr, /Warning: Publish 1 failed: Not authorized\./);
    } finally {
      await sub.endAsync();
    }
  });
});

test("the demo refuses an --mqtt-broker that is not mqtt://host:port", async () => {
  const tmp = tempDir();
  try {
    const r = await runCli(["demo", "--dir", tmp.dir, "--mqtt-broker", "http://127.0.0.1:1883"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--mqtt-broker must be a URL such as mqtt:\/\/127\.0\.0\.1:1883/);
    assert.equal(existsSync(join(tmp.dir, "portcullis.yaml")), false);
  } finally {
    tmp.cleanup();
  }
});
