// Config errors name the file, the path of the field (`routes[2].auth.trustStores`) and what was expected.

export type FieldPath = readonly (string | number)[];

export function formatPath(path: FieldPath): string {
  let out = "";
  for (const part of path) out += typeof part === "number" ? `[${part}]` : out === "" ? part : `.${part}`;
  return out === "" ? "(top level)" : out;
}

export interface ConfigProblem {
  readonly path: FieldPath;
  readonly message: string;
}

export class ConfigError extends Error {
  override name = "ConfigError";
  readonly file: string;
  readonly problems: readonly ConfigProblem[];

  constructor(file: string, problems: readonly ConfigProblem[]) {
    const lines = problems.map((p) => `${file}: ${formatPath(p.path)}: ${p.message}`);
    super(lines.join("\n"));
    this.file = file;
    this.problems = problems;
  }
}
