// Load → validate → compile: reads the YAML file, checks it against the schema and compiles it into the
// runtime objects. Every failure is one ConfigError listing each problem with its field path.
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { LineCounter, parseDocument } from "yaml";
import { type CompiledConfig, compileConfig } from "./compile.ts";
import { ConfigError, type ConfigProblem } from "./errors.ts";
import { type Config, configSchema } from "./schema.ts";

/** Parses and validates config text; `file` names the source in messages. */
export function parseConfigText(text: string, file: string): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        return { path: [], message: `YAML line ${line} column ${col}: ${e.message.split("\n")[0]}` };
      }),
    );
  }
  const result = configSchema.safeParse(doc.toJS() ?? {});
  if (!result.success) {
    const problems: ConfigProblem[] = result.error.issues.map((issue) => ({
      path: issue.path.filter((p): p is string | number => typeof p !== "symbol"),
      message:
        issue.code === "unrecognized_keys" ? `unknown key(s): ${issue.keys.join(", ")}` : issue.message,
    }));
    throw new ConfigError(file, problems);
  }
  return result.data;
}

export async function loadConfig(file: string, generation = 0): Promise<CompiledConfig> {
  const path = resolve(file);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ConfigError(path, [{ path: [], message: `cannot read config: ${(err as Error).message}` }]);
  }
  const config = parseConfigText(text, path);
  return compileConfig(config, { file: path, baseDir: dirname(path), generation });
}
