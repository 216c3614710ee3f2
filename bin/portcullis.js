#!/usr/bin/env node
// Launcher for the `portcullis` CLI: always runs on the Node 24 pinned in node_modules (npm package `node`),
// even when the shell's `node` is older, because older runtimes miss TLS fixes the gateway relies on.
// It runs the JavaScript that `npm run build` (the prepare script) compiled into dist/; without dist/, or
// with PORTCULLIS_FROM_SOURCE=1, it runs src/ through Node's type stripping instead (slower to start).
import { existsSync } from "node:fs";
import module from "node:module";

const major = Number(process.versions.node.split(".")[0]);
if (major >= 24) {
  // V8's code cache on disk (os.tmpdir()/node-compile-cache, as tsc does): a command that loads the
  // X.509 and config libraries starts about 50 ms sooner from the second run on. NODE_DISABLE_COMPILE_CACHE=1
  // turns it off; a cache that cannot be written is skipped silently.
  module.enableCompileCache?.();
  const compiled = new URL("../dist/cli/main.js", import.meta.url);
  if (process.env.PORTCULLIS_FROM_SOURCE !== "1" && existsSync(compiled)) await import(compiled.href);
  else await import("../src/cli/main.ts");
} else {
  const { spawn } = await import("node:child_process");
  const require = module.createRequire(import.meta.url);
  let pinned;
  try {
    pinned = require.resolve("node/bin/node");
  } catch {
    console.error(
      `portcullis needs Node.js 24; this is ${process.version} and the pinned runtime is missing (run npm install)`,
    );
    process.exit(2);
  }
  const child = spawn(pinned, [new URL(import.meta.url).pathname, ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
}
