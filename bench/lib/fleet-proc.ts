// Memory and CPU of a server's processes, read from /proc (Linux): a process and its children (the
// `--workers` primary and its workers, nginx's master and worker), each process on its own.
import { readdirSync, readFileSync } from "node:fs";

/** The process and its direct children (as /proc lists them now). */
export function withChildren(pid: number): number[] {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/);
    return [pid, ...children.filter(Boolean).map(Number)];
  } catch {
    return [pid];
  }
}

/** VmRSS of one process in KiB; 0 once it is gone. */
export function rssKiBOf(pid: number): number {
  try {
    return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/**
 * Proportional set size of one process in KiB: shared pages (the node binary's code, mapped once for all
 * workers) divided among the processes sharing them, so that a sum over processes counts them once.
 */
export function pssKiBOf(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

export function totalRssKiB(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + rssKiBOf(pid), 0);
}

/** utime + stime of the processes, in ms (Linux reports clock ticks of 10 ms). */
export function cpuMsOf(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks * 10;
}

/** Open file descriptors of a process. */
export function openFiles(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}
