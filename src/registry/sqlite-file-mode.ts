// The SQLite registry holds every device binding: like private keys and the admin token it is readable by
// its owner only (0600). A new database file is created 0600 before SQLite opens it (O_EXCL, so there is
// no moment when it exists with looser bits); SQLite's unix VFS then creates the -wal and -shm files with
// the database file's own mode whatever the umask, so they are 0600 too. An existing database, or a -wal
// or -shm left by an earlier run, that group or others may read is tightened to owner-only with a warning.
import { chmodSync, closeSync, constants, fchmodSync, openSync, statSync } from "node:fs";

export const DATABASE_FILE_MODE = 0o600;

/** The files SQLite keeps for a database in WAL mode. */
export function databaseFiles(path: string): string[] {
  return [path, `${path}-wal`, `${path}-shm`];
}

/**
 * Makes `path` (and its -wal/-shm files) owner-only before SQLite opens it. Returns the warnings it emitted
 * (each also sent through process.emitWarning). A file that cannot be created or changed is left to
 * SQLite, which reports a missing directory or a permission problem better.
 */
export function prepareDatabaseFile(path: string): string[] {
  // In-memory and temporary databases have no file.
  if (path === "" || path === ":memory:" || path.startsWith("file:")) return [];
  try {
    const fd = openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_RDWR, DATABASE_FILE_MODE);
    try {
      // The umask may have taken bits away from 0600 (an owner without write could not use the file).
      fchmodSync(fd, DATABASE_FILE_MODE);
    } finally {
      closeSync(fd);
    }
    return [];
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") return [];
  }
  const warnings: string[] = [];
  for (const file of databaseFiles(path)) {
    let mode: number;
    try {
      mode = statSync(file).mode & 0o777;
    } catch {
      continue;
    }
    if ((mode & 0o077) === 0) continue;
    const octal = (m: number) => `0${m.toString(8).padStart(3, "0")}`;
    try {
      chmodSync(file, mode & 0o700);
      warnings.push(`device registry ${file} was mode ${octal(mode)}; changed to ${octal(mode & 0o700)}`);
    } catch (error) {
      warnings.push(
        `device registry ${file} is mode ${octal(mode)} (group or others can read it) and could not be changed: ${(error as Error).message}`,
      );
    }
  }
  for (const warning of warnings) process.emitWarning(warning, { code: "PORTCULLIS_REGISTRY_MODE" });
  return warnings;
}
