import assert from "node:assert/strict";
import { test } from "node:test";
import { type CompiledRoute, RouteConflictError, type RouteSpec, RouteTable } from "./route-table.ts";

const route = (name: string): CompiledRoute => ({ name, service: "svc", policy: undefined });
const spec = (name: string, paths: string[], hosts?: string[], methods?: string[]): RouteSpec => ({
  route: route(name),
  hosts,
  paths,
  methods,
});

test("paths are prefixes at segment boundaries", () => {
  const table = new RouteTable([spec("echo", ["/echo"], ["a.example"])]);
  assert.equal(table.find("a.example", "GET", "/echo")?.route.name, "echo");
  assert.equal(table.find("a.example", "GET", "/echo/more/x")?.route.name, "echo");
  assert.equal(table.find("a.example", "GET", "/echoes"), undefined);
  assert.equal(table.find("b.example", "GET", "/echo"), undefined, "another host never falls back");
});

test("parameters, methods and host precedence", () => {
  const table = new RouteTable([
    spec("telemetry", ["/devices/:id/telemetry"], ["a.example"], ["POST"]),
    spec("wild", ["/w"], ["*.example"]),
    spec("any", ["/w"]),
  ]);
  const m = table.find("a.example", "POST", "/devices/abc/telemetry");
  assert.equal(m?.route.name, "telemetry");
  assert.equal(m?.params.id, "abc");
  assert.equal(table.find("a.example", "GET", "/devices/abc/telemetry"), undefined);
  assert.equal(table.find("x.example", "GET", "/w")?.route.name, "wild");
  assert.equal(table.find("x.y.example", "GET", "/w")?.route.name, "any");
  assert.equal(table.find("other.test", "GET", "/w")?.route.name, "any");
});

test("two routes on the same host, path and method are a conflict", () => {
  assert.throws(
    () => new RouteTable([spec("one", ["/x"], ["a.example"]), spec("two", ["/x"], ["a.example"])]),
    RouteConflictError,
  );
});
