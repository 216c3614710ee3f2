// A bad config stops `portcullis start` with exit code 2 and a message naming the file and the field path
// (fail closed: nothing is served). CLI usage errors exit 2 as well.
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { type AddressInfo, createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import type { ConfigInput } from "../../src/config/schema.ts";
import { ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { runCli, startGateway, tempDir } from "../helpers/gateway-process.ts";

/** A valid config (paths relative to the config file's directory). */
function baseConfig(): ConfigInput {
  return {
    listeners: [
      {
        name: "main",
        port: 0,
        clientAuth: "application",
        certificates: [{ cert: "server.crt", key: "server.key" }],
      },
    ],
    trustStores: [{ name: "devices", ca: ["ca-chain.crt"] }],
    services: [{ name: "echo", targets: ["http://127.0.0.1:9"] }],
    routes: [
      { name: "echo", paths: ["/echo"], service: "echo", auth: { trustStores: ["devices"] } },
      { name: "public", paths: ["/public"], service: "echo", public: true },
    ],
  };
}

describe("config errors stop start-up with exit code 2", () => {
  const tmp = tempDir();
  let counter = 0;

  /** Writes `text` (or the YAML of a config) to a fresh file next to the PKI and runs `start` on it. */
  async function startWith(content: string | Record<string, unknown>, extraArgs: readonly string[] = []) {
    const file = join(tmp.dir, `config-${++counter}.yaml`);
    writeFileSync(file, typeof content === "string" ? content : stringify(content));
    const result = await runCli(["start", "--config", file, ...extraArgs]);
    return { ...result, file };
  }

  async function expectProblem(content: string | Record<string, unknown>, ...expected: (string | RegExp)[]) {
    const { code, stdout, stderr, file } = await startWith(content);
    assert.equal(code, 2, `exit code\nstdout: ${stdout}\nstderr: ${stderr}`);
    assert.ok(stderr.includes(file), `stderr names the file ${file}:\n${stderr}`);
    for (const want of expected) {
      if (typeof want === "string") assert.ok(stderr.includes(want), `stderr mentions ${want}:\n${stderr}`);
      else assert.match(stderr, want);
    }
    assert.doesNotMatch(stderr, /^\s+at /m, "a config error is not a stack trace");
    assert.doesNotMatch(stdout, /"listening"/, "nothing was served");
    return stderr;
  }

  const mutated = (edit: (c: ConfigInput & Record<string, unknown>) => void): Record<string, unknown> => {
    const config = baseConfig() as ConfigInput & Record<string, unknown>;
    edit(config);
    return config;
  };

  before(async () => {
    await ensureDemoPki(tmp.dir);
  });
  after(() => tmp.cleanup());

  test("the base config of these tests is valid: the gateway starts on it", async () => {
    const dir = tempDir();
    try {
      await ensureDemoPki(dir.dir);
      const gw = await startGateway(dir.dir, baseConfig());
      assert.ok((gw.ports.main ?? 0) > 0);
      assert.equal(await gw.stop(), 0);
    } finally {
      dir.cleanup();
    }
  });

  test("a public route behind handshake-mode listeners only is refused, with the way out", async () => {
    await expectProblem(
      mutated((c) => {
        for (const l of c.listeners) l.clientAuth = "handshake";
      }),
      "routes[1].public",
      "a client without a certificate can never reach this public route",
      "publicBehindHandshake: true",
    );
  });

  test("an unknown top-level key is named", async () => {
    await expectProblem(
      mutated((c) => {
        c.listner = [];
      }),
      "(top level)",
      "listner",
    );
  });

  test("a typo in a nested key names its path: routes[0].auth.trustStore", async () => {
    await expectProblem(
      mutated((c) => {
        const route = c.routes[0];
        if (route) route.auth = { trustStore: ["devices"] } as unknown as { trustStores: string[] };
      }),
      "routes[0].auth",
      "trustStore",
    );
  });

  test('a typo\'d key gets "did you mean", and explains the key it was meant to be (no "missing" error)', async () => {
    const stderr = await expectProblem(
      mutated((c) => {
        const listener = c.listeners[0] as unknown as Record<string, unknown>;
        listener.clientAuht = listener.clientAuth;
        delete listener.clientAuth;
      }),
      'listeners[0]: unknown key "clientAuht" (did you mean "clientAuth"?)',
    );
    assert.doesNotMatch(
      stderr,
      /listeners\[0\]\.clientAuth:/,
      "the missing clientAuth is explained, not reported",
    );
  });

  test("an upstream target without a scheme says how to write it", async () => {
    await expectProblem(
      mutated((c) => {
        const service = c.services[0];
        if (service) service.targets = ["127.0.0.1:3000"];
      }),
      'services[0].targets[0]: "127.0.0.1:3000" has no scheme: expected a URL such as http://127.0.0.1:3000',
    );
  });

  test("two listeners on one port: the port and both listeners are named before anything listens", async () => {
    await expectProblem(
      mutated((c) => {
        const first = c.listeners[0];
        if (!first) return;
        first.port = 18443;
        c.listeners.push({ ...first, name: "second" });
      }),
      /listeners\[1\]\.port: port 18443 on \S+ is already listener "main"'s/,
    );
  });

  test("a busy admin port is named, with the listener, before anything logs listening", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      const { code, stdout, stderr } = await startWith(
        mutated((c) => {
          c.admin = { port, tokenFile: "admin.token" };
        }),
      );
      assert.equal(code, 1, stderr);
      assert.match(
        stderr,
        new RegExp(`port ${port} on 127\\.0\\.0\\.1 \\(admin listener\\) is already in use`),
      );
      assert.doesNotMatch(stdout, /"msg":"listening"/, "nothing was announced as listening");
    } finally {
      blocker.close();
    }
  });

  test("a missing server certificate file is named with its field path", async () => {
    await expectProblem(
      mutated((c) => {
        const cert = c.listeners[0]?.certificates[0];
        if (cert) cert.cert = "no-such-server.crt";
      }),
      "listeners[0].certificates[0].cert",
      "file not found",
      "no-such-server.crt",
    );
  });

  test("a CA file without any certificate fails closed: trustStores[0].ca", async () => {
    writeFileSync(join(tmp.dir, "garbage-ca.pem"), "this is not a certificate\n");
    await expectProblem(
      mutated((c) => {
        const store = c.trustStores?.[0];
        if (store) store.ca = ["garbage-ca.pem"];
      }),
      "trustStores[0].ca",
    );
  });

  test("a CA file with a corrupt PEM block fails closed: trustStores[0].ca", async () => {
    writeFileSync(
      join(tmp.dir, "corrupt-ca.pem"),
      "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGUgYXQgYWxs\n-----END CERTIFICATE-----\n",
    );
    await expectProblem(
      mutated((c) => {
        const store = c.trustStores?.[0];
        if (store) store.ca = ["ca-chain.crt", "corrupt-ca.pem"];
      }),
      "trustStores[0].ca",
    );
  });

  for (const workers of [[], ["--workers", "2"]]) {
    test(`a CRL file that cannot be read stops start-up ${workers.join(" ")} with one line, not a stack trace (fail closed), before the device store is created`, async () => {
      const db = `crl-failure${workers.length}.db`;
      const { code, stdout, stderr } = await startWith(
        mutated((c) => {
          const store = c.trustStores?.[0];
          if (store) store.revocation = { mode: "strict", crl: { files: ["missing.crl"] } };
          c.store = { url: `sqlite:${db}` };
          // With an admin listener, a --workers primary opens the device store itself.
          c.admin = { host: "127.0.0.1", port: 0, tokenFile: "admin.token" };
        }),
        workers,
      );
      assert.equal(code, 2, `exit code\nstdout: ${stdout}\nstderr: ${stderr}`);
      assert.match(stderr, /missing\.crl/);
      assert.doesNotMatch(stderr, /^\s+at /m);
      assert.doesNotMatch(stdout, /"listening"|device store ready/);
      assert.equal(existsSync(join(tmp.dir, db)), false, "no SQLite file is left behind");
    });
  }

  test("a key that does not match the certificate is named", async () => {
    await expectProblem(
      mutated((c) => {
        const cert = c.listeners[0]?.certificates[0];
        if (cert) cert.key = "device.key";
      }),
      "listeners[0].certificates[0].key",
      "does not match",
    );
  });

  test("a route with neither auth nor `public: true` is refused (deny by default)", async () => {
    await expectProblem(
      mutated((c) => {
        c.routes.push({ name: "forgotten", paths: ["/forgotten"], service: "echo" });
      }),
      "routes[2]",
      "public: true",
    );
  });

  test("a route naming an unknown trust store is refused", async () => {
    await expectProblem(
      mutated((c) => {
        const route = c.routes[0];
        if (route) route.auth = { trustStores: ["devicez"] };
      }),
      "routes[0].auth.trustStores[0]",
      "devicez",
    );
  });

  test("a route naming an unknown service is refused", async () => {
    await expectProblem(
      mutated((c) => {
        const route = c.routes[1];
        if (route) route.service = "ecko";
      }),
      "routes[1].service",
      "ecko",
    );
  });

  test("invalid YAML is reported with its line", async () => {
    const yaml = [
      "listeners:",
      "  - name: main",
      "    port: 0",
      "    clientAuth: application",
      "   certificates: [{ cert: server.crt, key: server.key }]",
      "services: []",
    ].join("\n");
    await expectProblem(yaml, /YAML\b.*\bline \d+/);
  });

  test('a YAML alias bomb ("billion laughs") is one line, exit 2, not a stack trace', async () => {
    // 9 levels of 9 aliases each: 9^9 strings once expanded.
    const lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i <= 8; i++) {
      const aliases = Array.from({ length: 9 }, () => `*a${i - 1}`);
      lines.push(`a${i}: &a${i} [${aliases.join(",")}]`);
    }
    const stderr = await expectProblem(lines.join("\n"), /alias/);
    assert.equal(stderr.trim().split("\n").length, 1, `one line:\n${stderr}`);
  });

  test("a config file over 1 MiB is refused before it is parsed", async () => {
    const stderr = await expectProblem(`# ${"x".repeat(1024 * 1024)}\n${stringify(baseConfig())}`, /1 MiB/);
    assert.equal(stderr.trim().split("\n").length, 1, `one line:\n${stderr}`);
  });

  test('a duration typo ("5 seconds") names the field and what a duration looks like', async () => {
    const stderr = await expectProblem(
      mutated((c) => {
        const service = c.services[0];
        if (service) service.readTimeout = "5 seconds";
      }),
      "services[0].readTimeout",
    );
    assert.match(stderr, /duration|"500ms"|"10s"/, `the message says what was expected:\n${stderr}`);
  });
});

describe("CLI usage errors exit with code 2", () => {
  test("`portcullis start` without --config", async () => {
    const r = await runCli(["start"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--config/);
  });

  test("`portcullis start --config` on a file that does not exist", async () => {
    const tmp = tempDir();
    try {
      const file = join(tmp.dir, "missing.yaml");
      const r = await runCli(["start", "--config", file]);
      assert.equal(r.code, 2, r.stderr);
      assert.ok(r.stderr.includes(file), r.stderr);
    } finally {
      tmp.cleanup();
    }
  });

  test("an unknown command", async () => {
    const r = await runCli(["frobnicate"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /frobnicate/);
  });

  test("`portcullis demo --mode bogus`", async () => {
    const tmp = tempDir();
    try {
      const r = await runCli([
        "demo",
        "--mode",
        "bogus",
        "--dir",
        tmp.dir,
        "--port",
        "0",
        "--admin-port",
        "0",
      ]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /bogus/);
      assert.doesNotMatch(r.stdout, /Press Ctrl-C/);
    } finally {
      tmp.cleanup();
    }
  });
});
