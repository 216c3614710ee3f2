// The package's root directory, found by walking up from this module to the nearest package.json: the
// same answer whether the code runs from src/ (tests) or from dist/ (the CLI, the e2e tests).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

/** Where `npm run build` puts the console's assets. */
export function defaultConsoleDir(): string {
  return join(packageRoot(), "dist", "console");
}
