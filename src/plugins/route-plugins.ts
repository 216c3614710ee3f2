// The plugin instances of one runtime (one loaded config), created from a route's compiled specs the first
// time the route is used, and closed together when a reload replaces the runtime.
import type { Logger } from "../gateway/log.ts";
import type { GatewayMetrics } from "../gateway/metrics.ts";
import type { CompiledRoute } from "../routing/route-table.ts";
import type { Plugin } from "./plugin.ts";

const NONE: readonly Plugin[] = Object.freeze([]);

export class RoutePlugins {
  readonly #byRoute = new Map<string, readonly Plugin[]>();
  /** One instance per plugin spec: a service's plugin shared by its routes keeps one state (one rate limit). */
  readonly #bySpec = new Map<unknown, Plugin>();
  readonly #metrics: GatewayMetrics;
  readonly #logger: Logger;

  constructor(metrics: GatewayMetrics, logger: Logger) {
    this.#metrics = metrics;
    this.#logger = logger;
  }

  for(route: CompiledRoute): readonly Plugin[] {
    const specs = route.plugins;
    if (!specs || specs.length === 0) return NONE;
    let plugins = this.#byRoute.get(route.name);
    if (plugins === undefined) {
      plugins = specs.map((spec) => {
        let plugin = this.#bySpec.get(spec.config);
        if (plugin === undefined) {
          plugin = spec.factory.create(spec.config, {
            metrics: this.#metrics,
            logger: this.#logger,
            scope: spec.scope,
          });
          this.#bySpec.set(spec.config, plugin);
        }
        return plugin;
      });
      this.#byRoute.set(route.name, plugins);
    }
    return plugins;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#bySpec.values()].map((p) => p.close?.()));
  }
}
