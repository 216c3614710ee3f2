// npm links the bins of dependencies into node_modules/.bin but not the project's own; link `portcullis`
// there so that `npx portcullis` and scripts that put node_modules/.bin on PATH find it after npm install.
import { existsSync, lstatSync, mkdirSync, symlinkSync, unlinkSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const binDir = join(root, "node_modules", ".bin");
const link = join(binDir, "portcullis");
if (existsSync(join(root, "node_modules"))) {
  mkdirSync(binDir, { recursive: true });
  try {
    if (lstatSync(link)) unlinkSync(link);
  } catch {}
  symlinkSync(relative(binDir, join(root, "bin", "portcullis.js")), link);
}
