// An `--import` hook for tests: records the URL of every module the process loads (ESM and CommonJS, via
// module.registerHooks) and writes them, one a line, to the file named by PORTCULLIS_MODULE_TRACE at exit.
import { writeFileSync } from "node:fs";
import { registerHooks } from "node:module";

const file = process.env.PORTCULLIS_MODULE_TRACE;
if (file) {
  const loaded: string[] = [];
  registerHooks({
    load(url, context, nextLoad) {
      loaded.push(url);
      return nextLoad(url, context);
    },
  });
  // `exit` also runs on process.exit(), which the CLI calls once a command is done.
  process.on("exit", () => writeFileSync(file, loaded.map((url) => `${url}\n`).join("")));
}
