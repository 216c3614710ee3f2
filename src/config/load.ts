// Load → validate → compile: reads the YAML file, checks it against the schema and compiles it into the
// runtime objects. Every failure is one ConfigError listing each problem with its field path.
import { open } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { type Document, LineCounter, parseDocument, visit, type YAMLError } from "yaml";
import { type CompiledConfig, compileConfig } from "./compile.ts";
import { ConfigError, type ConfigProblem } from "./errors.ts";
import { type Config, configSchema } from "./schema.ts";
import { schemaProblems } from "./suggest.ts";

/** A config file bigger than this is refused before it is parsed (a config is a few KiB). */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/**
 * How many alias expansions (`*name`) the YAML to JS conversion may make, counted as the `yaml` package
 * does (each alias weighs the aliases inside its anchor): enough for anchors shared by a few dozen routes,
 * far too few for a "billion laughs" document.
 */
export const MAX_YAML_ALIAS_COUNT = 100;

function tooBigProblem(size: string): ConfigProblem {
  return {
    path: [],
    message: `config file is ${size}, more than the limit of ${MAX_CONFIG_BYTES} bytes (1 MiB)`,
  };
}

/** One line for a YAML error, with line and column when the parser knows them. */
function yamlProblem(error: YAMLError, lineCounter: LineCounter): ConfigProblem {
  const { line, col } = lineCounter.linePos(error.pos[0]);
  const message =
    error.code === "RESOURCE_EXHAUSTION"
      ? "nesting too deep to parse"
      : (error.message.split("\n")[0] ?? error.message);
  return { path: [], message: `YAML line ${line} column ${col}: ${message}` };
}

/** Where the first alias `*name` is, for an error that names it but has no position. */
function aliasPosition(doc: Document | undefined, name: string | undefined, lineCounter: LineCounter) {
  let offset: number | undefined;
  if (doc && name !== undefined) {
    visit(doc, {
      Alias(_, node) {
        if (node.source !== name) return undefined;
        offset = node.range?.[0];
        return visit.BREAK;
      },
    });
  }
  return offset === undefined ? undefined : lineCounter.linePos(offset);
}

/** One line for an error the `yaml` package threw rather than reported. */
function thrownYamlProblem(err: unknown, doc: Document | undefined, lineCounter: LineCounter): ConfigProblem {
  // It throws a ReferenceError on an alias bomb or an alias without its anchor; a stack overflow is a
  // RangeError. Each is a problem of the file, not a crash of the gateway.
  const reason = err instanceof Error ? err.message : String(err);
  const message = /excessive alias count/i.test(reason)
    ? `more than ${MAX_YAML_ALIAS_COUNT} alias expansions (*name), refused as a possible alias bomb`
    : err instanceof RangeError
      ? "nesting too deep to parse"
      : (reason.split("\n")[0] ?? reason);
  const unresolved = /^Unresolved alias.*: (\S+)$/.exec(message)?.[1];
  const at = aliasPosition(doc, unresolved, lineCounter);
  return { path: [], message: at ? `YAML line ${at.line} column ${at.col}: ${message}` : `YAML: ${message}` };
}

/** Parses and validates config text; `file` names the source in messages. */
export function parseConfigText(text: string, file: string): Config {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_CONFIG_BYTES) throw new ConfigError(file, [tooBigProblem(`${bytes} bytes`)]);
  const lineCounter = new LineCounter();
  let data: unknown;
  let doc: Document | undefined;
  try {
    doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
    const [first, ...more] = doc.errors;
    if (first) {
      // The first error is the one to fix; those after it are mostly its echoes, so they are only counted.
      const { path, message } = yamlProblem(first, lineCounter);
      const suffix =
        more.length > 0 ? ` (and ${more.length} more YAML error${more.length > 1 ? "s" : ""})` : "";
      throw new ConfigError(file, [{ path, message: message + suffix }]);
    }
    data = doc.toJS({ maxAliasCount: MAX_YAML_ALIAS_COUNT });
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(file, [thrownYamlProblem(err, doc, lineCounter)]);
  }
  const result = configSchema.safeParse(data ?? {});
  if (!result.success)
    throw new ConfigError(file, schemaProblems(configSchema, data ?? {}, result.error.issues));
  return result.data;
}

/**
 * Reads at most `MAX_CONFIG_BYTES` + 1 bytes of the file, so that a huge file (or a device such as
 * /dev/zero) is refused without being read whole. Throws a ConfigError naming the file.
 */
async function readConfigFile(path: string): Promise<string> {
  const limit = MAX_CONFIG_BYTES;
  const tooBig = (size: string) => new ConfigError(path, [tooBigProblem(size)]);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, "r");
  } catch (err) {
    throw new ConfigError(path, [{ path: [], message: `cannot read config: ${(err as Error).message}` }]);
  }
  try {
    const { size } = await handle.stat();
    if (size > limit) throw tooBig(`${size} bytes`);
    const buffer = Buffer.alloc(limit + 1);
    let length = 0;
    while (length < buffer.length) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > limit) throw tooBig("larger");
    return buffer.toString("utf8", 0, length);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(path, [{ path: [], message: `cannot read config: ${(err as Error).message}` }]);
  } finally {
    await handle.close();
  }
}

export async function loadConfig(file: string, generation = 0): Promise<CompiledConfig> {
  const path = resolve(file);
  const text = await readConfigFile(path);
  const config = parseConfigText(text, path);
  return compileConfig(config, { file: path, baseDir: dirname(path), generation });
}
