// A large admin import does not stop device traffic: one gateway process (admin API and device listener in
// the same event loop), a 40,000-device POST /devices/import with the streamed answer, and a device making
// requests all along. Asserted by order of events, never by duration: device answers keep arriving between
// the import's first "writing" progress line and its result line (before the fix, the store write held the
// event loop from start to end, so none could). On SQLite (the write runs off the main thread) and PostgreSQL.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import {
  AdminApi,
  dropSchema,
  e2eSchema,
  KeepAliveDevice,
  pgStoreUrl,
  type RegistryPki,
  registryConfig,
  registryPki,
} from "../helpers/registry.ts";

const DEVICES = 40_000;

interface StreamedLine {
  readonly value: { phase: string; status?: number; imported?: number; written?: number; total?: number };
  /** performance.now() when the line arrived. */
  readonly at: number;
}

function fleet(count: number): string {
  const lines: string[] = [];
  for (let n = 0; n < count; n++) {
    lines.push(
      JSON.stringify({
        id: `fleet-${String(n).padStart(6, "0")}`,
        groups: [`site-${n % 8}`],
        bindings: [{ kind: "fingerprint", value: createHash("sha256").update(`fleet-${n}`).digest("hex") }],
      }),
    );
  }
  return `${lines.join("\n")}\n`;
}

/** POST /devices/import asking for the streamed answer; every line with the time it arrived. */
function streamedImport(base: string, token: string, body: string): Promise<StreamedLine[]> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}/devices/import`,
      {
        method: "POST",
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/x-ndjson",
          accept: "application/x-ndjson",
        },
      },
      (res) => {
        const lines: StreamedLine[] = [];
        let buffered = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          buffered += chunk;
          for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
            lines.push({ value: JSON.parse(buffered.slice(0, nl)), at: performance.now() });
            buffered = buffered.slice(nl + 1);
          }
        });
        res.on("end", () => resolve(lines));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

for (const engine of ["sqlite", "postgres"] as const) {
  describe(`device traffic during a ${DEVICES.toLocaleString("en-US")}-device import (${engine})`, () => {
    const tmp = tempDir(`portcullis-import-traffic-${engine}-`);
    const schema = e2eSchema();
    let pki: RegistryPki;
    let echo: EchoUpstream;
    let gw: GatewayProcess | undefined;
    let admin: AdminApi;

    before(async () => {
      pki = await registryPki(tmp.dir);
      echo = await startEchoUpstream();
      const storeUrl = engine === "sqlite" ? "sqlite:data/registry.db" : pgStoreUrl(schema);
      gw = await startGateway(tmp.dir, registryConfig({ upstream: echo.url, storeUrl }));
      admin = new AdminApi(gw.adminPort, pki.token);
      await admin.register("device-001", pki.existing("device"));
    });
    after(async () => {
      await gw?.stop();
      await echo?.close();
      if (engine === "postgres") await dropSchema(schema);
      tmp.cleanup();
    });

    test("device requests are answered while the import writes; the import then lands whole", async () => {
      const device = new KeepAliveDevice(gw?.ports.main ?? 0, tmp.dir, pki.existing("device"));
      try {
        assert.equal((await device.get()).status, 200);
        const body = fleet(DEVICES);
        let importing = true;
        const answers: { at: number; status: number }[] = [];
        const traffic = (async () => {
          while (importing) {
            const r = await device.get();
            answers.push({ at: performance.now(), status: r.status });
          }
        })();
        const lines = await streamedImport(admin.base, pki.token, body).finally(() => {
          importing = false;
        });
        await traffic;

        const last = lines.at(-1);
        assert.deepEqual(
          { phase: last?.value.phase, status: last?.value.status, imported: last?.value.imported },
          { phase: "done", status: 200, imported: DEVICES },
        );
        const writing = lines.filter((l) => l.value.phase === "writing");
        assert.ok(writing.length >= 1, "a writing phase was announced");
        const writeFrom = writing[0]?.at ?? Number.POSITIVE_INFINITY;
        const during = answers.filter((a) => a.at > writeFrom && a.at < (last?.at ?? 0));
        assert.ok(
          during.length >= 5,
          `device answers between the first writing line and the result: ${during.length} (of ${answers.length} in all)`,
        );
        assert.deepEqual(
          answers.filter((a) => a.status !== 200),
          [],
          "every device request was allowed",
        );

        assert.equal(
          (await admin.call("GET", `/devices/fleet-${String(DEVICES - 1).padStart(6, "0")}`)).status,
          200,
        );
        assert.equal((await device.get()).status, 200, "the device still passes after the import's resync");
      } finally {
        await device.close();
      }
    });
  });
}
