// Registry policy end to end, on one gateway with the embedded SQLite store: `registry: required` maps the
// certificate to an active device (unknown 401, suspended / revoked / pending 403), route groups, `optional`,
// just-in-time registration (pending needing approval, active at once), and report-only enforcement seen
// through GET /decisions and GET /metrics.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { type CurlResult, curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import {
  AdminApi,
  type DeviceJson,
  HOST,
  type IssuedDevice,
  metricValue,
  type RegistryPki,
  registryConfig,
  registryPki,
} from "../helpers/registry.ts";

interface EchoBody {
  headers: Record<string, string | undefined>;
}
interface DenyBody {
  message: string;
  reason: string;
}
interface DecisionJson {
  route?: string;
  allow: boolean;
  enforced: boolean;
  reason?: string;
  fingerprint?: string;
  deviceId?: string;
}

const route = (name: string, path: string, auth: Record<string, unknown>) => ({
  name,
  hosts: [HOST],
  paths: [path],
  service: "echo",
  auth: { trustStores: ["devices"], registry: "required" as const, ...auth },
});

describe("registry policy (one gateway, SQLite)", () => {
  const tmp = tempDir("portcullis-registry-policy-");
  let pki: RegistryPki;
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  let admin: AdminApi;
  let port = 0;
  const devices: Record<string, IssuedDevice> = {};

  const request = (device: IssuedDevice | undefined, path = "/echo"): Promise<CurlResult> =>
    curl({ port, dir: tmp.dir, device: device?.name, path, http: "1.1" });
  const expectDeny = async (device: IssuedDevice, path: string, status: number, reason: string) => {
    const r = await request(device, path);
    assert.equal(r.status, status, `${device.name} on ${path}: ${r.body}`);
    assert.equal(r.json<DenyBody>().reason, reason, r.body);
  };

  before(async () => {
    pki = await registryPki(tmp.dir);
    echo = await startEchoUpstream();
    devices.alpha = pki.existing("device");
    devices.unregistered = pki.existing("unregistered-device");
    for (const id of ["dev-suspended", "dev-revoked", "dev-pending", "dev-fleet-b", "jit-p-1", "jit-a-1"]) {
      devices[id] = await pki.issue(id);
    }
    gw = await startGateway(
      tmp.dir,
      registryConfig({
        upstream: echo.url,
        storeUrl: "sqlite:data/registry.db",
        trustStores: [
          { name: "jit-pending", ca: ["ca-chain.crt"], autoRegister: "pending" },
          { name: "jit-active", ca: ["ca-chain.crt"], autoRegister: "active" },
        ],
        routes: [
          route("fleet-a", "/fleet-a", { groups: ["fleet-a"] }),
          route("optional", "/optional", { registry: "optional" }),
          route("report", "/report", { enforce: "report-only" }),
          route("jit-pending", "/jit-pending", { trustStores: ["jit-pending"] }),
          route("jit-active", "/jit-active", { trustStores: ["jit-active"] }),
        ],
      }),
    );
    port = gw.ports.main ?? 0;
    admin = new AdminApi(gw.adminPort, pki.token);
    const need = (name: string): IssuedDevice => {
      const d = devices[name];
      assert.ok(d, name);
      return d;
    };
    // device.crt carries urn:device:device-001; registered under another id, so x-device-id can only come
    // from the registry.
    await admin.register("reg-alpha", need("alpha"), { groups: ["fleet-a"] });
    await admin.register("dev-suspended", need("dev-suspended"), { status: "suspended" });
    await admin.register("dev-revoked", need("dev-revoked"), { status: "revoked" });
    await admin.register("dev-pending", need("dev-pending"), { status: "pending" });
    await admin.register("dev-fleet-b", need("dev-fleet-b"), { groups: ["fleet-b"] });
  });
  after(async () => {
    await gw?.stop();
    await echo?.close();
    tmp.cleanup();
  });

  const d = (name: string): IssuedDevice => {
    const device = devices[name];
    if (!device) throw new Error(`no device ${name}`);
    return device;
  };

  test("required: an unregistered device gets 401 unknown_device", async () => {
    const r = await request(d("unregistered"));
    assert.equal(r.status, 401, r.body);
    assert.deepEqual(r.json(), { message: "TLS certificate failed verification", reason: "unknown_device" });
  });

  test("required: a registered active device gets 200 with x-device-id from the registry", async () => {
    const r = await request(d("alpha"));
    assert.equal(r.status, 200, r.body);
    const headers = r.json<EchoBody>().headers;
    assert.equal(headers["x-device-id"], "reg-alpha");
    assert.equal(headers["x-device-groups"], "fleet-a", "the registry groups reach the upstream");
    assert.match(headers["x-forwarded-client-cert"] ?? "", new RegExp(`Hash=${d("alpha").fingerprint}`));
  });

  test("required: suspended 403 device_suspended, revoked 403 device_revoked, pending 403 device_pending", async () => {
    await expectDeny(d("dev-suspended"), "/echo", 403, "device_suspended");
    await expectDeny(d("dev-revoked"), "/echo", 403, "device_revoked");
    await expectDeny(d("dev-pending"), "/echo", 403, "device_pending");
  });

  test("groups [fleet-a]: a fleet-b device gets 403 group_not_allowed, a fleet-a device 200", async () => {
    await expectDeny(d("dev-fleet-b"), "/fleet-a", 403, "group_not_allowed");
    const ok = await request(d("alpha"), "/fleet-a");
    assert.equal(ok.status, 200, ok.body);
    // The same fleet-b device is fine where no group is required.
    assert.equal((await request(d("dev-fleet-b"))).status, 200);
  });

  test("optional: an unknown device passes; no certificate still does not", async () => {
    const r = await request(d("unregistered"), "/optional");
    assert.equal(r.status, 200, r.body);
    const known = await request(d("alpha"), "/optional");
    assert.equal(known.json<EchoBody>().headers["x-device-id"], "reg-alpha");
    assert.equal((await request(undefined, "/optional")).status, 401);
  });

  test("autoRegister pending: first sight creates a pending device (403 device_pending) until approved", async () => {
    const device = d("jit-p-1");
    assert.equal((await admin.call("GET", "/devices/jit-p-1")).status, 404, "not registered before");
    await expectDeny(device, "/jit-pending", 403, "device_pending");
    const created = await admin.call<DeviceJson>("GET", "/devices/jit-p-1");
    assert.equal(created.status, 200, created.text);
    assert.equal(created.json.status, "pending");
    assert.ok(
      created.json.bindings.some((b) => b.kind === "fingerprint" && b.value === device.fingerprint),
      created.text,
    );
    // Still pending on the next request: the device is not approved by being seen twice.
    await expectDeny(device, "/jit-pending", 403, "device_pending");
    await admin.patch("jit-p-1", { status: "active" });
    const approved = await request(device, "/jit-pending");
    assert.equal(approved.status, 200, approved.body);
    assert.equal(approved.json<EchoBody>().headers["x-device-id"], "jit-p-1");
  });

  test("autoRegister active: an unknown trusted device is registered active and passes at once", async () => {
    const r = await request(d("jit-a-1"), "/jit-active");
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json<EchoBody>().headers["x-device-id"], "jit-a-1");
    const created = await admin.call<DeviceJson>("GET", "/devices/jit-a-1");
    assert.equal(created.status, 200, created.text);
    assert.equal(created.json.status, "active");
    // A trust store without autoRegister registers nothing.
    await request(d("unregistered"));
    assert.equal((await admin.call("GET", "/devices/unregistered-device")).status, 404);
  });

  test("report-only: an unregistered device passes without identity; /decisions and /metrics record it", async () => {
    const r = await request(d("unregistered"), "/report");
    assert.equal(r.status, 200, r.body);
    const headers = r.json<EchoBody>().headers;
    assert.equal(headers["x-device-id"], undefined, "no identity is passed on for a would-be denial");
    assert.equal(headers["x-forwarded-client-cert"], undefined);

    const decisions = await admin.call<{ decisions: DecisionJson[] }>("GET", "/decisions?limit=50");
    assert.equal(decisions.status, 200, decisions.text);
    const record = decisions.json.decisions.find(
      (x) => x.route === "report" && x.fingerprint === d("unregistered").fingerprint,
    );
    assert.ok(record, decisions.text);
    assert.equal(record.allow, false);
    assert.equal(record.enforced, false);
    assert.equal(record.reason, "unknown_device");

    const metrics = await admin.call("GET", "/metrics");
    assert.equal(metrics.status, 200);
    const labels = { result: "deny", reason: "unknown_device", route: "report", enforced: "false" };
    assert.ok(
      (metricValue(metrics.text, "portcullis_decisions_total", labels) ?? 0) >= 1,
      metrics.text
        .split("\n")
        .filter((l) => l.startsWith("portcullis_decisions_total"))
        .join("\n"),
    );
    // An enforced denial is counted as such.
    assert.ok(
      (metricValue(metrics.text, "portcullis_decisions_total", {
        ...labels,
        route: "echo",
        enforced: "true",
      }) ?? 0) >= 1,
    );
  });
});
