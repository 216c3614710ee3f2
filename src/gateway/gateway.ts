// A running gateway: the listeners and the admin listener, and the runtime built from one compiled config
// (upstream pools, authenticator), swapped atomically on reload. A bad new config is rejected and the old
// one keeps serving.
import cluster from "node:cluster";
import { createRequire } from "node:module";
import type { TLSSocket } from "node:tls";
import { AdminServer, type ReadinessCheck, type ReloadStatus } from "../admin/server.ts";
import type { CompiledConfig, CompiledListener } from "../config/compile.ts";
import { ConfigError } from "../config/errors.ts";
import { loadConfig } from "../config/load.ts";
import { BindingRetirer } from "../enrollment/binding-retirer.ts";
import { CrlPublisher, writeMissingCrls } from "../enrollment/crl-publisher.ts";
import { EstService } from "../enrollment/est-service.ts";
import { mqttSessionDeps } from "../mqtt/mqtt-decisions.ts";
import { MqttListenerServer } from "../mqtt/mqtt-listener.ts";
import { type PluginHealth, pluginHealth } from "../plugins/rate-limit/health.ts";
import { RoutePlugins } from "../plugins/route-plugins.ts";
import { Upstream } from "../proxy/upstream.ts";
import type { RegistryStore } from "../registry/enrollment-types.ts";
import { openDeviceStore } from "../registry/open-store.ts";
import { RevocationConfigError } from "../revocation/errors.ts";
import { RevocationService } from "../revocation/revocation-service.ts";
import { PresentedChains } from "../tls/connection-identity.ts";
import { type ConnectionLimit, ListenerServer } from "../tls/listener.ts";
import { reasonForHandshakeError } from "../tls/openssl-reasons.ts";
import type { ProxyProtocolDetails, ProxyProtocolResult } from "../tls/proxy-protocol.ts";
import { SESSION_TIMEOUT_S } from "../tls/secure-contexts.ts";
import { SessionNames } from "../tls/session-names.ts";
import { admitConnection } from "./admission.ts";
import { Authenticator } from "./authenticator.ts";
import { bindError } from "./bind-error.ts";
import { ConfigWatcher } from "./config-watcher.ts";
import { DecisionLog } from "./decision-log.ts";
import { addressSource, DenialLog } from "./denial-log.ts";
import { DeviceRegistry } from "./device-registry.ts";
import type { Logger } from "./log.ts";
import { GatewayMetrics } from "./metrics.ts";
import { handleRequest, handleUpgrade, type RequestHandlerDeps } from "./request-handler.ts";
import { adminInPrimary, linkToPrimary } from "./worker-link.ts";

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };

export interface BoundListener {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly clientAuth: string;
}

/** How long a replaced runtime's upstream pools may finish their requests before they are closed. */
const UPSTREAM_RETIRE_MS = 30_000;

/** How often CRL files are checked for a change: a revocation published as a file applies within it. */
const CRL_POLL_MS = 1_000;

/** What outlives a reload: the log, the decision log, the metrics and the device registry with its store. */
interface Observability {
  readonly logger: Logger;
  readonly denials: DenialLog;
  readonly decisions: DecisionLog;
  readonly metrics: GatewayMetrics;
  readonly registry: DeviceRegistry | undefined;
  readonly store: RegistryStore | undefined;
  readonly retirer: BindingRetirer | undefined;
}

interface Runtime extends RequestHandlerDeps {
  readonly revocation: RevocationService | undefined;
}

/**
 * The EST server of a config, its CA keys loaded; CRL files it keeps are created empty when missing, so that
 * trust stores listing them can load (the CRL publisher writes the real list once the store is open).
 */
async function openEnrollment(config: CompiledConfig): Promise<EstService | undefined> {
  if (!config.enrollment) return undefined;
  const est = await EstService.create(config.enrollment, config.file);
  await writeMissingCrls(est, new Date());
  return est;
}

/** The revocation data of a config; throws (RevocationConfigError) when a CRL file is broken: fail closed. */
async function openRevocation(
  config: CompiledConfig,
  logger: Logger,
): Promise<RevocationService | undefined> {
  return config.trustStores.some((s) => s.revocation.mode !== "off")
    ? await RevocationService.create(config.trustStores, { logger, filePollIntervalMs: CRL_POLL_MS })
    : undefined;
}

/** Builds what serves one config; throws (RevocationConfigError) when a CRL file is broken: fail closed. */
async function buildRuntime(
  config: CompiledConfig,
  o: Observability,
  opened?: { revocation: RevocationService | undefined; est: EstService | undefined },
): Promise<Runtime> {
  const est = opened ? opened.est : await openEnrollment(config);
  const revocation = opened ? opened.revocation : await openRevocation(config, o.logger);
  const upstreams = new Map(
    config.services.map((s) => [s.name, new Upstream(s, { logger: o.logger, metrics: o.metrics })]),
  );
  const authenticator = new Authenticator(config.trustStores, {
    revocation,
    limits: config.chainLimits,
    logger: o.logger,
    metrics: o.metrics,
  });
  const { store, retirer } = o;
  return {
    logger: o.logger,
    denials: o.denials,
    decisions: o.decisions,
    metrics: o.metrics,
    registry: o.registry,
    config,
    upstreams,
    plugins: new RoutePlugins(o.metrics, o.logger),
    authenticator,
    revocation,
    est:
      est && store
        ? {
            service: est,
            deps: {
              authenticator,
              registry: o.registry,
              store,
              decisions: o.decisions,
              metrics: o.metrics,
              denials: o.denials,
              logger: o.logger,
              retiring: (at) => retirer?.retiring(at),
            },
          }
        : undefined,
  };
}

/** Closes what a replaced runtime holds, once its requests had `graceMs` to finish. */
async function retire(runtime: Runtime, graceMs: number): Promise<void> {
  runtime.authenticator.close();
  await runtime.revocation?.close();
  if (graceMs > 0) await new Promise((r) => setTimeout(r, graceMs).unref());
  await Promise.all([...runtime.upstreams.values()].map((u) => u.close()));
  await runtime.plugins.close();
}

/**
 * What a reload cannot change in a running gateway (read once at start): the listeners' addresses and the
 * limits Node's servers take at creation, the admin listener, and the device store with its cache.
 * Such a change is rejected with this reason; the old config keeps serving until a restart.
 */
function restartNeeded(current: CompiledConfig, next: CompiledConfig): string | undefined {
  const listeners = (c: CompiledConfig) =>
    JSON.stringify(
      c.listeners.map((l) => [
        l.name,
        l.protocol,
        l.host,
        l.port,
        l.limits.handshakeTimeout,
        l.limits.headersTimeout,
        l.limits.maxConnections,
      ]),
    );
  if (listeners(current) !== listeners(next)) {
    return "listeners were added, removed or moved, or their protocol, handshakeTimeout, headersTimeout or maxConnections changed";
  }
  if (JSON.stringify(current.admin) !== JSON.stringify(next.admin)) return "the admin settings changed";
  if (JSON.stringify(current.store) !== JSON.stringify(next.store))
    return "the device store settings changed";
  return undefined;
}

export class Gateway implements Observability {
  readonly logger: Logger;
  readonly denials: DenialLog;
  readonly decisions: DecisionLog;
  readonly metrics: GatewayMetrics;
  #registry: DeviceRegistry | undefined;
  #store: RegistryStore | undefined;
  #retirer: BindingRetirer | undefined;
  #crls: CrlPublisher | undefined;
  #runtime!: Runtime;
  readonly #listeners: (ListenerServer | MqttListenerServer)[] = [];
  readonly #startedAt = Date.now();
  readonly #chains = new PresentedChains();
  readonly #sessionNames = new SessionNames(SESSION_TIMEOUT_S * 1000);
  #admin: AdminServer | undefined;
  #adminPort: number | undefined;
  #draining = false;
  #reloading: Promise<boolean> = Promise.resolve(true);
  #watcher: ConfigWatcher | undefined;
  #lastReload: ReloadStatus | undefined;
  #unlink: (() => void) | undefined;

  private constructor(config: CompiledConfig, logger: Logger) {
    this.logger = logger;
    this.decisions = new DecisionLog(config.admin?.decisionsKept ?? 1000);
    this.metrics = new GatewayMetrics();
    this.denials = new DenialLog(logger, config.denialSampling, (event) =>
      this.metrics.logLinesSuppressed.inc({ event }),
    );
    // Under --workers the primary aggregates every worker's metrics: each series says which worker.
    if (cluster.isWorker) this.metrics.registry.setDefaultLabels({ worker: String(cluster.worker?.id) });
    // Both series exist from the start, so that an alert on the error series has a zero to compare with.
    for (const result of ["ok", "error"]) this.metrics.configReloads.inc({ result }, 0);
  }

  get registry(): DeviceRegistry | undefined {
    return this.#registry;
  }

  get store(): RegistryStore | undefined {
    return this.#store;
  }

  get retirer(): BindingRetirer | undefined {
    return this.#retirer;
  }

  static async start(config: CompiledConfig, logger: Logger): Promise<Gateway> {
    const gateway = new Gateway(config, logger);
    let revocation: RevocationService | undefined;
    try {
      // CA keys and CRL files first: a broken one stops start-up before the device store (an SQLite file) is
      // created.
      const est = await openEnrollment(config);
      revocation = await openRevocation(config, logger);
      await gateway.#openRegistry(config);
      gateway.#runtime = await buildRuntime(config, gateway, { revocation, est });
      await gateway.#crls?.use(est);
      await gateway.#start();
    } catch (err) {
      // Not yet part of a runtime (which stop() closes): closed here.
      if (gateway.#runtime?.revocation !== revocation) await revocation?.close();
      await gateway.stop(0);
      throw err;
    }
    return gateway;
  }

  get config(): CompiledConfig {
    return this.#runtime.config;
  }

  async #openRegistry(config: CompiledConfig): Promise<void> {
    const store = openDeviceStore(config.store.url);
    try {
      await store.migrate();
    } catch (err) {
      await store.close().catch(() => {});
      throw err;
    }
    this.#store = store;
    this.#retirer = new BindingRetirer(store, this.logger);
    this.#retirer.start();
    this.#crls = new CrlPublisher(store, this.logger);
    this.metrics.useEnrollmentStore(store);
    this.#registry = new DeviceRegistry(store, {
      cacheMaxEntries: config.store.cacheMaxEntries,
      cacheTtlMs: config.store.cacheTtl,
      outageGraceMs: config.store.outageGrace,
      lastSeenIntervalMs: config.store.lastSeenInterval,
      connections: () => this.#connections(),
      closeConnections: (match) => this.#listeners.reduce((n, l) => n + l.closeConnections(match), 0),
      logger: this.logger,
      metrics: this.metrics,
    });
    this.logger.info({ store: store.health().kind }, "device store ready");
  }

  *#connections() {
    for (const listener of this.#listeners) yield* listener.connections();
  }

  /** Open device connections on every listener (GET /status; a worker reports it to the primary each second). */
  #openConnections(): number {
    return this.#listeners.reduce((n, l) => n + l.openConnections, 0);
  }

  async #start(): Promise<void> {
    const { logger, config } = this;
    const listening: { listener: string; address: string; port: number }[] = [];
    const connectionHooks = {
      admit: (socket: TLSSocket, current: CompiledListener) =>
        admitConnection(socket, current, {
          authenticator: this.#runtime.authenticator,
          chains: this.#chains,
          sessionNames: this.#sessionNames,
          denials: this.denials,
          decisions: this.decisions,
          metrics: this.metrics,
        }),
      trackConnection: (current: CompiledListener, authenticated: boolean) =>
        this.metrics.trackConnection(current.name, authenticated),
      limitHit: (
        current: CompiledListener,
        limit: ConnectionLimit,
        action: "evicted" | "refused" | "closed",
      ) => this.metrics.connectionLimitHits.inc({ listener: current.name, limit, action }),
      handshakeExtended: (current: CompiledListener) =>
        this.metrics.handshakeExtensions.inc({ listener: current.name }),
      handshakeFailed: (error: Error, socket: TLSSocket, current: CompiledListener) => {
        const reason = reasonForHandshakeError(error, socket.authorizationError);
        this.metrics.recordHandshakeFailure(current.name, reason);
        const peer = socket.remoteAddress ?? "";
        this.denials.log(addressSource(peer), "handshake failed", {
          listener: current.name,
          reason,
          error: error.message,
          peer,
        });
      },
      proxyProtocol: (
        current: CompiledListener,
        result: ProxyProtocolResult,
        details: ProxyProtocolDetails,
      ) => {
        this.metrics.proxyProtocol.inc({ listener: current.name, result });
        if (result === "accepted") return;
        this.denials.log(addressSource(details.peer), "connection refused", {
          listener: current.name,
          reason:
            result === "untrusted_source" ? "proxy_protocol_untrusted_source" : "proxy_protocol_malformed",
          detail: details.detail,
          peer: details.peer,
        });
      },
    };
    for (const listener of config.listeners) {
      const server =
        listener.protocol === "mqtt"
          ? new MqttListenerServer(listener, { ...connectionHooks, ...mqttSessionDeps(() => this.#runtime) })
          : new ListenerServer(listener, {
              ...connectionHooks,
              request: (req, res, current) => handleRequest(this.#runtime, req, res, current),
              upgrade: (req, socket, head, current, opened) =>
                handleUpgrade(this.#runtime, req, socket, head, current, opened),
            });
      this.#listeners.push(server);
      const address = await server
        .listen()
        .catch((err: unknown) => bindError(err, `listener "${listener.name}"`, listener.host, listener.port));
      listening.push({ listener: listener.name, address: address.address, port: address.port });
    }
    if (adminInPrimary()) {
      this.#unlink = linkToPrimary(this.decisions, this.metrics, () => this.#openConnections());
    } else if (config.admin) {
      const { tls } = config.admin;
      this.#admin = new AdminServer({
        host: config.admin.host,
        port: config.admin.port,
        token: config.admin.token,
        status: () => this.status(),
        readiness: () => this.readiness(),
        publicHealth: config.admin.publicHealth,
        store: this.#requireStore(),
        enrollmentStore: this.#requireStore(),
        enrollment: () => this.config.enrollment,
        decisions: this.decisions,
        metrics: this.metrics,
        fleet: this.metrics.fleet,
        logger,
        tls: tls ? { cert: tls.cert, key: tls.key, ca: tls.ca } : undefined,
        console: config.admin.console,
        trust: () => ({ trustStores: this.config.trustStores, revocation: this.#runtime.revocation }),
      });
      const { host, port } = config.admin;
      this.#adminPort = (
        await this.#admin
          .listen(host, port)
          .catch((err: unknown) => bindError(err, "admin listener", host, port))
      ).port;
    }
    // Logged once every port is bound: a port in use fails start-up before anything says "listening".
    for (const fields of listening) logger.info(fields, "listening");
    if (this.#adminPort !== undefined) logger.info({ admin: true, port: this.#adminPort }, "admin listening");
  }

  #requireStore(): RegistryStore {
    if (!this.#store) throw new Error("the device registry is not open");
    return this.#store;
  }

  /** Reloads when the config file or any file it references changes (certificates, keys, CA and CRL files). */
  watchConfig(): void {
    this.#watcher ??= new ConfigWatcher(() => void this.reload());
    this.#watcher.watch(this.config.files);
  }

  /**
   * Loads the config file again and swaps it in atomically. Resolves to false (and logs why) when the new
   * config is rejected; the old one then keeps serving. Reloads never overlap.
   */
  reload(): Promise<boolean> {
    this.#reloading = this.#reloading
      .then(() => this.#reload())
      .catch((err: unknown) => {
        this.logger.error({ err }, "reload failed");
        this.#noteReload(err instanceof Error ? err.message : String(err));
        return false;
      });
    return this.#reloading;
  }

  async #reload(): Promise<boolean> {
    const current = this.#runtime;
    let next: Runtime;
    let commits: (() => void)[];
    try {
      const config = await loadConfig(current.config.file, current.config.generation + 1);
      const why = restartNeeded(current.config, config);
      if (why) throw new ConfigError(config.file, [{ path: [], message: `${why}: restart to apply` }]);
      commits = this.#listeners.map((server) => {
        const listener = config.listeners.find((l) => l.name === server.listener.name);
        return listener ? server.prepareUpdate(listener) : () => {};
      });
      next = await buildRuntime(config, this);
    } catch (err) {
      const known = err instanceof ConfigError || err instanceof RevocationConfigError;
      this.logger.error({ err: known ? err.message : err }, "reload rejected");
      this.#noteReload(err instanceof Error ? err.message : String(err));
      return false;
    }
    this.#runtime = next;
    void this.#crls?.use(next.est?.service);
    this.logger.level = next.config.logLevel;
    this.denials.configure(next.config.denialSampling);
    for (const commit of commits) commit();
    void retire(current, UPSTREAM_RETIRE_MS);
    this.#watcher?.watch(next.config.files);
    this.logger.info({ generation: next.config.generation, file: next.config.file }, "config reloaded");
    this.#noteReload(undefined);
    return true;
  }

  /** Records a reload's outcome for GET /status and portcullis_config_reload_total; `error` when rejected. */
  #noteReload(error: string | undefined): void {
    const at = new Date().toISOString();
    this.#lastReload = error === undefined ? { result: "ok", at } : { result: "error", at, error };
    this.metrics.configReloads.inc({ result: this.#lastReload.result });
  }

  /** GET /readyz's checks besides the store: a config is loaded and every listener is bound, not draining. */
  readiness(): ReadinessCheck[] {
    const unbound = this.#listeners.filter((l) => !l.listening).map((l) => l.listener.name);
    return [
      { name: "config", ok: this.#runtime !== undefined, detail: "no config loaded" },
      {
        name: "listeners",
        ok: !this.#draining && unbound.length === 0 && this.#listeners.length > 0,
        detail: this.#draining ? "draining" : `not listening: ${unbound.join(", ") || "none bound"}`,
      },
    ];
  }

  get listeners(): BoundListener[] {
    return this.#listeners.map((l) => ({
      name: l.listener.name,
      host: l.listener.host,
      port: l.port,
      clientAuth: l.listener.clientAuth,
    }));
  }

  get adminPort(): number | undefined {
    return this.#adminPort;
  }

  status() {
    return {
      status: this.#draining ? ("draining" as const) : ("ok" as const),
      version,
      uptimeSeconds: Math.round((Date.now() - this.#startedAt) / 1000),
      configGeneration: this.config.generation,
      ...(this.#lastReload ? { lastReload: this.#lastReload } : {}),
      connections: { open: this.#openConnections() },
      listeners: this.listeners.map((l) => ({
        name: l.name,
        address: l.host,
        port: l.port,
        clientAuth: l.clientAuth,
      })),
      ...this.#pluginStatus(),
    };
  }

  /** Plugins with a health of their own (a rate limit's Redis), once their route has been used. */
  #pluginStatus(): { plugins?: PluginHealth[] } {
    const plugins = pluginHealth(this.metrics);
    return plugins.length > 0 ? { plugins } : {};
  }

  /** Stops accepting, finishes in-flight requests for up to `graceMs`, then closes everything. */
  async stop(graceMs = 10_000): Promise<void> {
    this.#draining = true;
    this.#watcher?.close();
    await Promise.all(this.#listeners.map((l) => l.close(graceMs)));
    await this.#admin?.close();
    this.#unlink?.();
    if (this.#runtime) await retire(this.#runtime, 0);
    await this.#retirer?.close();
    await this.#crls?.close();
    await this.#registry?.close();
  }
}
