// One compilation's context: where the config file is, the problems found so far (all reported at once),
// and every file read (watched for reloads).
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { ConfigProblem, FieldPath } from "./errors.ts";

export interface CompileContext {
  readonly file: string;
  readonly baseDir: string;
  /** Increases with every (re)load: policy ids carry it, so no verdict outlives the config it was made under. */
  readonly generation?: number;
}

/** What one compilation collects: its problems, and every file it depends on. */
export class Problems {
  readonly list: ConfigProblem[] = [];
  readonly files = new Set<string>();
  add(path: FieldPath, message: string): void {
    // A service's problem is found once per route using it: reported once.
    const key = JSON.stringify([path, message]);
    if (this.#seen.has(key)) return;
    this.#seen.add(key);
    this.list.push({ path, message });
  }
  readonly #seen = new Set<string>();
}

export function uniqueNames(items: readonly { name: string }[], section: string, problems: Problems): void {
  const seen = new Set<string>();
  items.forEach((item, i) => {
    if (seen.has(item.name)) problems.add([section, i, "name"], `duplicate name "${item.name}"`);
    seen.add(item.name);
  });
}

export function readText(
  ctx: CompileContext,
  file: string,
  path: FieldPath,
  problems: Problems,
): string | undefined {
  const full = resolve(ctx.baseDir, file);
  problems.files.add(full);
  try {
    return readFileSync(full, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.add(path, code === "ENOENT" ? `file not found: ${full}` : `cannot read ${full}: ${code ?? err}`);
    return undefined;
  }
}
