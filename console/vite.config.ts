// The admin console's build: `vite build --config console/vite.config.ts` (part of `npm run build`) writes
// dist/console/, which the admin listener serves under /console/ with a strict CSP (no inline script or
// style), so the HTML must load everything from files.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";
import { reasonCodes } from "./reason-codes-plugin.ts";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  root: here("."),
  base: "/console/",
  publicDir: false,
  clearScreen: false,
  logLevel: "warn",
  plugins: [reasonCodes(here("../docs/reason-codes.md"))],
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: here("../dist/console"),
    emptyOutDir: true,
    target: "es2022",
    // Vite's modulepreload polyfill is an inline script, which the CSP refuses; every target browser
    // supports <link rel="modulepreload"> anyway.
    modulePreload: { polyfill: false },
    // No data: URIs for assets: everything is a file under /console/assets/.
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    reportCompressedSize: false,
    chunkSizeWarningLimit: 200,
  },
});
