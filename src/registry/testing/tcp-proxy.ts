// A TCP proxy that a test controls: pass traffic, reset every connection, or black-hole it (a cut network path).
import net from "node:net";

export type ProxyMode = "pass" | "reset" | "blackhole";

export class TcpProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #mode: ProxyMode = "pass";

  private constructor(server: net.Server) {
    this.#server = server;
  }

  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    const server = net.createServer();
    const proxy = new TcpProxy(server);
    server.on("connection", (client) => proxy.#accept(client, targetHost, targetPort));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** reset: destroys every open connection and each new one; blackhole: silently drops all bytes. */
  set mode(mode: ProxyMode) {
    this.#mode = mode;
    if (mode === "reset") for (const socket of this.#sockets) socket.destroy();
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #track(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.on("close", () => this.#sockets.delete(socket));
    socket.on("error", () => socket.destroy());
  }

  #accept(client: net.Socket, host: string, port: number): void {
    this.#track(client);
    if (this.#mode === "reset") {
      client.destroy();
      return;
    }
    const upstream = net.connect(port, host);
    this.#track(upstream);
    // Forwarded by hand rather than piped, so that black-holing can drop bytes on live connections.
    client.on("data", (data) => {
      if (this.#mode === "pass") upstream.write(data);
    });
    upstream.on("data", (data) => {
      if (this.#mode === "pass") client.write(data);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  }
}
