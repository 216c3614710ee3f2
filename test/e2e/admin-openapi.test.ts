// GET /openapi.json: a well-formed OpenAPI 3.1 document whose paths are exactly the router's routes, whose
// references all resolve, and whose schemas name the fields real answers carry.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type AdminHarness, startAdmin } from "../../src/admin/testing/harness.ts";
import type { RegistryStore } from "../../src/registry/enrollment-types.ts";
import { openDeviceStore } from "../../src/registry/open-store.ts";

type Json = Record<string, unknown>;
const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Every `$ref` anywhere in the document. */
function refs(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) refs(v, out);
  else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (k === "$ref" && typeof v === "string") out.push(v);
      else refs(v, out);
    }
  }
  return out;
}

function resolve(doc: Json, ref: string): unknown {
  assert.ok(ref.startsWith("#/"), `only local refs: ${ref}`);
  return ref
    .slice(2)
    .split("/")
    .reduce<unknown>((node, part) => (isObject(node) ? node[part] : undefined), doc);
}

/** The object schema's property names and required names (after one $ref). */
function shape(doc: Json, name: string): { properties: string[]; required: string[] } {
  const schema = resolve(doc, `#/components/schemas/${name}`);
  assert.ok(isObject(schema) && isObject(schema.properties), `schema ${name}`);
  return { properties: Object.keys(schema.properties), required: (schema.required as string[]) ?? [] };
}

function conforms(doc: Json, name: string, body: Json): void {
  const { properties, required } = shape(doc, name);
  for (const key of Object.keys(body)) assert.ok(properties.includes(key), `${name} lacks property ${key}`);
  for (const key of required) assert.ok(key in body, `${name} requires ${key}, the answer lacks it`);
}

describe("admin API: OpenAPI document", () => {
  let admin: AdminHarness;
  let doc: Json;
  // A real store, as the gateway opens it: it keeps enrollment tokens and certificates, so every route is served.
  const dir = mkdtempSync(join(tmpdir(), "portcullis-openapi-"));
  let store: RegistryStore;
  before(async () => {
    store = openDeviceStore(`sqlite:${join(dir, "registry.db")}`);
    await store.migrate();
    admin = await startAdmin({ store, enrollmentStore: store });
    const r = await admin.call<Json>("GET", "/openapi.json");
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^application\/json/);
    doc = r.json;
  });
  after(async () => {
    await admin.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("is OpenAPI 3.1 with info, bearer security and operations that all have responses", () => {
    assert.match(String(doc.openapi), /^3\.1\.\d+$/);
    assert.ok(
      isObject(doc.info) && typeof doc.info.title === "string" && typeof doc.info.version === "string",
    );
    assert.deepEqual(doc.security, [{ bearerAuth: [] }]);
    const components = doc.components as Json;
    assert.deepEqual((components.securitySchemes as Json).bearerAuth, {
      type: "http",
      scheme: "bearer",
      description: "The admin token (admin.tokenFile)",
    });
    const operationIds = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths as Json)) {
      assert.ok(path.startsWith("/"));
      assert.ok(isObject(item));
      const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const shared = (item.parameters as Json[] | undefined) ?? [];
      for (const method of Object.keys(item).filter((k) => HTTP_METHODS.includes(k))) {
        const op = item[method] as Json;
        assert.equal(typeof op.operationId, "string", `${method} ${path} operationId`);
        assert.ok(!operationIds.has(String(op.operationId)), "operationIds are unique");
        operationIds.add(String(op.operationId));
        const responses = op.responses as Json;
        assert.ok(Object.keys(responses).length > 0);
        for (const status of Object.keys(responses)) assert.match(status, /^[1-5]\d\d$/);
        assert.ok(
          Object.keys(responses).some((s) => s.startsWith("2")),
          `${method} ${path} has a success`,
        );
        assert.ok("401" in responses, `${method} ${path} documents 401`);
        const params = [...shared, ...((op.parameters as Json[] | undefined) ?? [])];
        for (const name of templated) {
          assert.ok(
            params.some((p) => p.in === "path" && p.name === name && p.required === true),
            `${method} ${path} declares path parameter ${name}`,
          );
        }
      }
    }
  });

  test("every $ref resolves", () => {
    const all = refs(doc);
    assert.ok(all.length > 20);
    for (const ref of all) assert.ok(resolve(doc, ref) !== undefined, `unresolved ${ref}`);
  });

  test("the router's routes and the document's operations are the same set", () => {
    const fromRouter = admin.server.router
      .routes()
      .map((r) => `${r.method} ${r.path}`)
      .sort();
    const fromDoc = Object.entries(doc.paths as Json)
      .flatMap(([path, item]) =>
        Object.keys(item as Json)
          .filter((k) => HTTP_METHODS.includes(k))
          .map((m) => `${m.toUpperCase()} ${path}`),
      )
      .sort();
    assert.deepEqual(fromDoc, fromRouter);
    assert.ok(fromRouter.includes("POST /devices/import"));
  });

  test("answers carry the fields their schemas name", async () => {
    const created = await admin.call<Json>("POST", "/devices", { body: { id: "schema-1", groups: ["g"] } });
    conforms(doc, "Device", created.json);
    conforms(doc, "DevicePage", (await admin.call<Json>("GET", "/devices")).json);
    conforms(doc, "Status", (await admin.call<Json>("GET", "/status")).json);
    conforms(doc, "Error", (await admin.call<Json>("GET", "/devices/none")).json);
    const invalid = await admin.call<Json>("POST", "/devices", { body: { id: "" } });
    conforms(doc, "Error", invalid.json);
    conforms(doc, "FieldError", (invalid.json.errors as Json[])[0] as Json);
    admin.decisions.record({
      at: new Date().toISOString(),
      listener: "l",
      allow: false,
      enforced: true,
      reason: "no_certificate",
    });
    const decisions = await admin.call<{ decisions: Json[] }>("GET", "/decisions");
    conforms(doc, "DecisionList", decisions.json);
    conforms(doc, "Decision", decisions.json.decisions[0] as Json);
    const failed = await admin.call<Json>("POST", "/devices/import", {
      raw: "nope\n",
      headers: { "content-type": "application/x-ndjson" },
    });
    conforms(doc, "ImportFailure", failed.json);
    conforms(doc, "LineError", (failed.json.errors as Json[])[0] as Json);
  });

  test("request schemas come from the validators: NewDevice is strict and needs an id", () => {
    const newDevice = resolve(doc, "#/components/schemas/NewDevice") as Json;
    assert.deepEqual(newDevice.required, ["id"]);
    assert.equal(newDevice.additionalProperties, false);
    assert.ok(isObject(newDevice.properties) && "certificate" in newDevice.properties);
  });
});
