#!/usr/bin/env node
// Launcher for the `portcullis` CLI: always runs on the Node 24 pinned in node_modules (npm package `node`),
// even when the shell's `node` is older, because older runtimes miss TLS fixes the gateway relies on.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";

const major = Number(process.versions.node.split(".")[0]);
if (major >= 24) {
  await import("../src/cli/main.ts");
} else {
  const require = createRequire(import.meta.url);
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
