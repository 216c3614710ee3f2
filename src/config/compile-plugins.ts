// Compiles the plugins of a route: its service's and its own (a route's plugin replaces the service's plugin
// of the same name), each config checked against its plugin's schema, in priority order. The plugins
// themselves are created by the runtime from these specs, at load and at reload.
import type { z } from "zod";
import type { PluginFactory } from "../plugins/plugin.ts";
import { PLUGINS } from "../plugins/registry.ts";
import type { Problems } from "./compile-context.ts";
import type { FieldPath } from "./errors.ts";
import type { PluginSpecConfig } from "./schema.ts";
import { closestKey } from "./suggest.ts";

export interface PluginSpec {
  readonly factory: PluginFactory;
  readonly config: unknown;
  /** `route:<name>` or `service:<name>`: where it was configured. */
  readonly scope: string;
}

function compileOne(
  spec: PluginSpecConfig,
  at: FieldPath,
  scope: string,
  problems: Problems,
): PluginSpec | undefined {
  const factory = PLUGINS.get(spec.name);
  if (!factory) {
    const known = [...PLUGINS.keys()];
    const hint = closestKey(spec.name, known);
    problems.add(
      [...at, "name"],
      `unknown plugin "${spec.name}"${hint ? ` (did you mean "${hint}"?)` : ""} (known: ${known.join(", ")})`,
    );
    return undefined;
  }
  const parsed = (factory.schema as z.ZodType).safeParse(spec.config);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.add([...at, "config", ...(issue.path as (string | number)[])], issue.message);
    }
    return undefined;
  }
  return { factory, config: parsed.data, scope };
}

/** The plugins configured at one place (a route or a service), by name. */
export function compilePlugins(
  specs: readonly PluginSpecConfig[],
  at: FieldPath,
  scope: string,
  problems: Problems,
): ReadonlyMap<string, PluginSpec> {
  const byName = new Map<string, PluginSpec>();
  const seen = new Set<string>();
  specs.forEach((spec, j) => {
    if (seen.has(spec.name)) {
      problems.add([...at, "plugins", j, "name"], `plugin "${spec.name}" is configured twice here`);
      return;
    }
    seen.add(spec.name);
    const compiled = compileOne(spec, [...at, "plugins", j], scope, problems);
    if (compiled) byName.set(spec.name, compiled);
  });
  return byName;
}

/** A route's plugins: its service's, replaced by its own of the same name, in priority order. */
export function routePlugins(
  service: ReadonlyMap<string, PluginSpec> | undefined,
  route: ReadonlyMap<string, PluginSpec>,
): readonly PluginSpec[] {
  const merged = new Map(service ?? []);
  for (const [name, spec] of route) merged.set(name, spec);
  return [...merged.values()].sort((a, b) => a.factory.priority - b.factory.priority);
}
