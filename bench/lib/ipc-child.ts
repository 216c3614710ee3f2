// A forked helper process asked one question at a time over IPC (the fleet benchmarks' devices and probe).
import { type ChildProcess, fork } from "node:child_process";

const children = new Set<IpcChild<unknown, unknown>>();

/** SIGKILLs every helper still running (process "exit", Ctrl-C). */
export function killChildren(): void {
  for (const child of children) child.kill();
}

export class IpcChild<Request, Reply> {
  readonly name: string;
  readonly process: ChildProcess;
  readonly exited: Promise<void>;
  readonly #messages: Reply[] = [];
  #waiting: ((reply: Reply | undefined) => void) | undefined;
  #alive = true;

  constructor(name: string, script: string, args: string[] = [], execArgv: string[] = []) {
    this.name = name;
    this.process = fork(script, args, {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      execArgv: [...process.execArgv, ...execArgv],
    });
    this.process.on("message", (message: Reply) => {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      if (waiting) waiting(message);
      else this.#messages.push(message);
    });
    this.exited = new Promise((resolve) => {
      this.process.once("exit", () => {
        this.#alive = false;
        children.delete(this as IpcChild<unknown, unknown>);
        const waiting = this.#waiting;
        this.#waiting = undefined;
        waiting?.(undefined);
        resolve();
      });
    });
    children.add(this as IpcChild<unknown, unknown>);
  }

  get pid(): number {
    return this.process.pid ?? 0;
  }

  get alive(): boolean {
    return this.#alive;
  }

  /** The next message, whether asked for or sent unprompted (a "ready"). */
  next(): Promise<Reply> {
    const queued = this.#messages.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (!this.#alive) return Promise.reject(new Error(`${this.name} exited`));
    if (this.#waiting) throw new Error(`${this.name}: one question at a time`);
    return new Promise((resolve, reject) => {
      this.#waiting = (reply) =>
        reply === undefined ? reject(new Error(`${this.name} exited`)) : resolve(reply);
    });
  }

  ask(request: Request): Promise<Reply> {
    const reply = this.next();
    this.process.send(request as object);
    return reply;
  }

  kill(): void {
    if (this.#alive) this.process.kill("SIGKILL");
  }

  /** Disconnects (helpers exit when their IPC channel closes), SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.#alive) return;
    if (this.process.connected) this.process.disconnect();
    const timer = setTimeout(() => this.kill(), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
