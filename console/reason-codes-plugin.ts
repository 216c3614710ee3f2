// A Vite plugin that turns the reason-code table of docs/reason-codes.md into the module
// `virtual:reason-codes`, at build time: the console's explanations come from the doc itself, so the two
// never drift. A doc without the table fails the build.
import { readFileSync } from "node:fs";
import type { Plugin } from "vite";

export interface ReasonDoc {
  readonly status: number;
  readonly message: string;
  /** When the gateway answers with this reason: the doc's "when" column as plain text. */
  readonly when: string;
}

const ID = "virtual:reason-codes";
const RESOLVED = `\0${ID}`;

/** Markdown inline markup to plain text: links keep their text, code spans and emphasis lose their marks. */
function plain(markdown: string): string {
  return markdown
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/`([^`]*)`/g, "$1")
    .replace(/\*\*([^*]*)\*\*/g, "$1")
    .trim();
}

/** The rows of the doc's `| reason | status | message | when |` table, by code. */
export function parseReasonCodes(markdown: string): Record<string, ReasonDoc> {
  const codes: Record<string, ReasonDoc> = {};
  for (const line of markdown.split("\n")) {
    const row = /^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|([^|]*)\|(.*)\|\s*$/.exec(line);
    if (!row) continue;
    const [, code = "", status = "", message = "", when = ""] = row;
    codes[code] = { status: Number(status), message: plain(message), when: plain(when) };
  }
  return codes;
}

export function reasonCodes(docFile: string): Plugin {
  return {
    name: "portcullis-reason-codes",
    resolveId(id) {
      return id === ID ? RESOLVED : undefined;
    },
    load(id) {
      if (id !== RESOLVED) return undefined;
      this.addWatchFile(docFile);
      const codes = parseReasonCodes(readFileSync(docFile, "utf8"));
      const count = Object.keys(codes).length;
      if (count < 10)
        this.error(`${docFile}: found ${count} reason codes in its table, expected the full table`);
      return `export default ${JSON.stringify(codes)};`;
    },
  };
}
