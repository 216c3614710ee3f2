// The benchmark's side of the load generator: forks bench/lib/loadgen.ts and sends it one request at a time.
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type {
  Closed,
  LoadgenReply,
  LoadgenRequest,
  OpenResult,
  RunRequest,
  RunResult,
  Target,
} from "./protocol.ts";
import { ManagedProcess } from "./servers.ts";

export class LoadGenerator {
  readonly #proc: ManagedProcess;
  #pending: ((reply: LoadgenReply) => void) | undefined;

  constructor() {
    const child = fork(fileURLToPath(new URL("./loadgen.ts", import.meta.url)), [], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    this.#proc = new ManagedProcess("load generator", child);
    child.on("message", (message: LoadgenReply) => {
      const pending = this.#pending;
      this.#pending = undefined;
      pending?.(message);
    });
    void this.#proc.exited.then(() => {
      const pending = this.#pending;
      this.#pending = undefined;
      pending?.({ kind: "error", message: "the load generator exited" });
    });
  }

  #ask(request: LoadgenRequest): Promise<LoadgenReply> {
    if (this.#pending) throw new Error("one load generator request at a time");
    return new Promise((resolve) => {
      this.#pending = resolve;
      this.#proc.child.send(request);
    });
  }

  async run(request: Omit<RunRequest, "kind">): Promise<RunResult> {
    const reply = await this.#ask({ kind: "run", ...request });
    if (reply.kind !== "result") throw new Error(`load generator: ${describe(reply)}`);
    return reply;
  }

  async open(target: Target, count: number): Promise<OpenResult> {
    const reply = await this.#ask({ kind: "open", target, count });
    if (reply.kind !== "opened") throw new Error(`load generator: ${describe(reply)}`);
    return reply;
  }

  async close(): Promise<Closed> {
    const reply = await this.#ask({ kind: "close" });
    if (reply.kind !== "closed") throw new Error(`load generator: ${describe(reply)}`);
    return reply;
  }

  stop(): Promise<void> {
    return this.#proc.stop();
  }
}

function describe(reply: LoadgenReply): string {
  return reply.kind === "error" ? reply.message : `unexpected reply ${reply.kind}`;
}
