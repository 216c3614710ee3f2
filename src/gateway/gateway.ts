// A running gateway: the listeners, the upstream pools, the authenticator and the admin listener built
// from one compiled config, with a graceful stop.
import { createRequire } from "node:module";
import { AdminServer } from "../admin/server.ts";
import type { CompiledConfig } from "../config/compile.ts";
import { Upstream } from "../proxy/upstream.ts";
import { PresentedChains } from "../tls/connection-identity.ts";
import { ListenerServer } from "../tls/listener.ts";
import { reasonForHandshakeError } from "../tls/openssl-reasons.ts";
import { SESSION_TIMEOUT_S } from "../tls/secure-contexts.ts";
import { SessionNames } from "../tls/session-names.ts";
import { admitConnection } from "./admission.ts";
import { Authenticator } from "./authenticator.ts";
import type { Logger } from "./log.ts";
import { handleRequest } from "./request-handler.ts";

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };

export interface BoundListener {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly clientAuth: string;
}

export class Gateway {
  readonly config: CompiledConfig;
  readonly logger: Logger;
  readonly #listeners: ListenerServer[] = [];
  readonly #upstreams = new Map<string, Upstream>();
  readonly #startedAt = Date.now();
  #admin: AdminServer | undefined;
  #adminPort: number | undefined;
  #draining = false;

  private constructor(config: CompiledConfig, logger: Logger) {
    this.config = config;
    this.logger = logger;
  }

  static async start(config: CompiledConfig, logger: Logger): Promise<Gateway> {
    const gateway = new Gateway(config, logger);
    try {
      await gateway.#start();
    } catch (err) {
      await gateway.stop(0);
      throw err;
    }
    return gateway;
  }

  async #start(): Promise<void> {
    const { config, logger } = this;
    for (const service of config.services) this.#upstreams.set(service.name, new Upstream(service));
    const authenticator = new Authenticator(config.trustStores);
    const chains = new PresentedChains();
    const sessionNames = new SessionNames(SESSION_TIMEOUT_S * 1000);
    const deps = { config, upstreams: this.#upstreams, authenticator, logger };
    for (const listener of config.listeners) {
      const server = new ListenerServer(listener, {
        admit: (socket) => admitConnection(socket, listener, { authenticator, chains, sessionNames, logger }),
        request: (req, res) => handleRequest(deps, req, res, listener),
        handshakeFailed: (error, socket) => {
          const reason = reasonForHandshakeError(error, socket.authorizationError);
          logger.info({ listener: listener.name, reason, error: error.message }, "handshake failed");
        },
      });
      this.#listeners.push(server);
      const address = await server.listen();
      logger.info({ listener: listener.name, address: address.address, port: address.port }, "listening");
    }
    if (config.admin) {
      this.#admin = new AdminServer({ ...config.admin, status: () => this.status() });
      this.#adminPort = (await this.#admin.listen(config.admin.host, config.admin.port)).port;
      logger.info({ admin: true, port: this.#adminPort }, "admin listening");
    }
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
      listeners: this.listeners.map((l) => ({
        name: l.name,
        address: l.host,
        port: l.port,
        clientAuth: l.clientAuth,
      })),
    };
  }

  /** Stops accepting, finishes in-flight requests for up to `graceMs`, then closes everything. */
  async stop(graceMs = 10_000): Promise<void> {
    this.#draining = true;
    await Promise.all(this.#listeners.map((l) => l.close(graceMs)));
    await this.#admin?.close();
    await Promise.all([...this.#upstreams.values()].map((u) => u.close()));
  }
}
