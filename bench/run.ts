// `npm run bench`: runs every bench/*.bench.ts, one after the other in its own process (so that one
// benchmark's JIT state and heap do not colour the next), and prints what each reports. Arguments are
// name filters; those after a `--` go to each benchmark run (`npm run bench -- gateway -- --repeat 5`).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const dir = fileURLToPath(new URL(".", import.meta.url));
const argv = process.argv.slice(2);
const split = argv.indexOf("--");
const only = split < 0 ? argv : argv.slice(0, split);
const passed = split < 0 ? [] : argv.slice(split + 1);
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts"))
  // The fleet bench needs ~16 GB and 10–25 minutes: only when named (`npm run bench -- fleet`).
  .filter((f) => (only.length === 0 ? !f.startsWith("fleet.") : only.some((o) => f.includes(o))))
  .sort();

let failed = 0;
for (const file of files) {
  process.stdout.write(`\n== ${file}\n`);
  const started = performance.now();
  const result = spawnSync(process.execPath, [join(dir, file), ...passed], { stdio: "inherit" });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (result.status !== 0) {
    failed++;
    process.stdout.write(`== ${file} FAILED (exit ${result.status ?? result.signal}) after ${seconds}s\n`);
  } else process.stdout.write(`== ${file} done in ${seconds}s\n`);
}
if (files.length === 0) process.stdout.write("no bench/*.bench.ts files\n");
process.exitCode = failed > 0 ? 1 : 0;
