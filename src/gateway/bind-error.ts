// A port that cannot be bound, said with the port, the address and what wanted it.

/** Rethrows a bind failure naming the port (EADDRINUSE and EACCES keep their code: the CLI exits 1). */
export function bindError(err: unknown, what: string, host: string, port: number): never {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== "EADDRINUSE" && code !== "EACCES") throw err;
  const why =
    code === "EADDRINUSE"
      ? "is already in use"
      : "needs privileges (a port below 1024: give the process CAP_NET_BIND_SERVICE)";
  throw Object.assign(new Error(`port ${port} on ${host} (${what}) ${why}`), { code });
}
