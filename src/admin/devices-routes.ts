// Device CRUD: list with filters and keyset pagination, create (a PEM certificate becomes bindings), read,
// patch with optimistic concurrency (If-Match or ifVersion), delete.
import type { IncomingMessage } from "node:http";
import { sendJson } from "../gateway/respond.ts";
import type { Device, DevicePatch } from "../registry/types.ts";
import { readJson } from "./body.ts";
import { toDeviceJson, toNewDevice } from "./device-json.ts";
import { HttpError } from "./errors.ts";
import type { AdminOptions } from "./options.ts";
import type { AdminRouter } from "./router.ts";
import { devicePatchInput, listQuery, newDeviceInput, parseOrThrow, queryObject } from "./validation.ts";

export function etag(device: Device): string {
  return `"${device.version}"`;
}

/** The version an `If-Match` header asks for: `"3"`, `3` or `W/"3"`; undefined for none or `*`. */
export function ifMatchVersion(req: IncomingMessage): number | undefined {
  const header = req.headers["if-match"];
  if (header === undefined || header.trim() === "*") return undefined;
  const match = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(header);
  if (!match?.[1] || Number(match[1]) < 1) {
    throw new HttpError(400, 'Invalid If-Match header: expected the device version, e.g. "3"', {
      errors: [{ path: "If-Match", message: "expected a device version" }],
    });
  }
  return Number(match[1]);
}

function deviceLocation(id: string): string {
  return `/devices/${encodeURIComponent(id)}`;
}

export function registerDeviceRoutes(router: AdminRouter, options: AdminOptions): void {
  const { store } = options;

  router.add("GET", "/devices", async ({ res, query, startedAt }) => {
    const q = parseOrThrow(listQuery, queryObject(query), "query", 400);
    const page = await store.list(q);
    sendJson(res, 200, { devices: page.devices.map(toDeviceJson), next: page.next ?? null }, startedAt);
  });

  router.add("POST", "/devices", async ({ req, res, startedAt }) => {
    const input = parseOrThrow(newDeviceInput, await readJson(req, options.maxJsonBytes), "device", 422);
    const device = toNewDevice(input);
    if (Array.isArray(device)) throw new HttpError(422, "Invalid device", { errors: device });
    const created = await store.create(device);
    sendJson(res, 201, toDeviceJson(created), startedAt, {
      location: deviceLocation(created.id),
      etag: etag(created),
    });
  });

  router.add("GET", "/devices/{id}", async ({ res, params, startedAt }) => {
    const id = params.id ?? "";
    const device = await store.get(id);
    if (!device) throw new HttpError(404, `Device "${id}" not found`);
    sendJson(res, 200, toDeviceJson(device), startedAt, { etag: etag(device) });
  });

  router.add("PATCH", "/devices/{id}", async ({ req, res, params, startedAt }) => {
    const id = params.id ?? "";
    const headerVersion = ifMatchVersion(req);
    const input = parseOrThrow(devicePatchInput, await readJson(req, options.maxJsonBytes), "patch", 422);
    if (headerVersion !== undefined && input.ifVersion !== undefined && headerVersion !== input.ifVersion) {
      throw new HttpError(400, "If-Match and ifVersion name different versions", {
        errors: [
          { path: "ifVersion", message: `If-Match says ${headerVersion}, ifVersion says ${input.ifVersion}` },
        ],
      });
    }
    const patch: DevicePatch = { ...input, ifVersion: input.ifVersion ?? headerVersion };
    const updated = await store.update(id, patch);
    sendJson(res, 200, toDeviceJson(updated), startedAt, { etag: etag(updated) });
  });

  router.add("DELETE", "/devices/{id}", async ({ res, params }) => {
    await store.delete(params.id ?? "");
    res.writeHead(204);
    res.end();
  });
}
