// The rate limits with a Redis store that are alive in a gateway, for GET /status: kept per GatewayMetrics
// (one per gateway, outliving reloads), added when a plugin is created and removed when it is closed.
import type { GatewayMetrics } from "../../gateway/metrics.ts";

export interface PluginHealth {
  readonly scope: string;
  readonly plugin: string;
  readonly redis: "ok" | "down";
}

interface Source {
  health(): PluginHealth;
}

const live = new WeakMap<GatewayMetrics, Set<Source>>();

export function track(metrics: GatewayMetrics, source: Source): () => void {
  let set = live.get(metrics);
  if (set === undefined) {
    set = new Set();
    live.set(metrics, set);
  }
  set.add(source);
  return () => set.delete(source);
}

/** Every live plugin's health for this gateway (plugins are created on their route's first request). */
export function pluginHealth(metrics: GatewayMetrics): PluginHealth[] {
  return [...(live.get(metrics) ?? [])].map((s) => s.health());
}
