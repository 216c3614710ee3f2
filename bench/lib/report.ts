// Figures measured in interleaved repetitions against a reference: medians, per-repetition ratios, targets,
// and their Markdown table (printed, and written to bench/results/ with the JSON).
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The median (the mean of the two middle values for an even count); undefined when there is none. */
export function median(values: readonly (number | undefined)[]): number | undefined {
  const sorted = values
    .filter((v): v is number => v !== undefined && Number.isFinite(v))
    .sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

export type Better = "lower" | "higher";

/** One row of the table: a subject's value in each repetition and the reference's in the same repetition. */
export interface Figure {
  readonly key: string;
  readonly label: string;
  readonly unit: string;
  readonly better: Better;
  readonly decimals: number;
  /** The issue's target for portcullis ÷ reference (at most this); printed, never asserted. */
  readonly target?: number;
  /** Per repetition; undefined where not measured (no reference). */
  readonly portcullis: readonly (number | undefined)[];
  readonly reference: readonly (number | undefined)[];
  /** Why there is no reference value, when there is none by design. */
  readonly noReference?: string;
}

export interface Summary {
  readonly portcullis: number | undefined;
  readonly reference: number | undefined;
  /** Median of the per-repetition ratios portcullis ÷ reference. */
  readonly ratio: number | undefined;
  readonly ratios: readonly (number | undefined)[];
  readonly targetMet: boolean | undefined;
}

export function summarize(f: Figure): Summary {
  const ratios = f.portcullis.map((p, i) => {
    const r = f.reference[i];
    return p === undefined || r === undefined || r === 0 || !Number.isFinite(p) || !Number.isFinite(r)
      ? undefined
      : p / r;
  });
  const ratio = median(ratios);
  return {
    portcullis: median(f.portcullis),
    reference: median(f.reference),
    ratio,
    ratios,
    targetMet: f.target === undefined || ratio === undefined ? undefined : ratio <= f.target,
  };
}

export function formatNumber(value: number | undefined, decimals: number): string {
  if (value === undefined || !Number.isFinite(value)) return "n/a";
  return value.toLocaleString("en-US", { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

const formatRatio = (r: number | undefined) => (r === undefined ? "n/a" : `${r.toFixed(2)}×`);

/** The Markdown table: figure, portcullis, nginx, ratio, target, repetitions (per-repetition ratios). */
export function markdownTable(figures: readonly Figure[], haveReference: boolean): string {
  const header = ["figure", "portcullis", "nginx", "ratio", "target", "repetitions"];
  const rows = figures.map((f) => {
    const s = summarize(f);
    const headline = f.target !== undefined;
    const reps =
      haveReference && f.noReference === undefined
        ? s.ratios.map(formatRatio)
        : f.portcullis.map((v) => formatNumber(v, f.decimals));
    return [
      headline ? `**${f.label}**` : f.label,
      formatNumber(s.portcullis, f.decimals),
      !haveReference
        ? "—"
        : f.noReference !== undefined
          ? `— (${f.noReference})`
          : formatNumber(s.reference, f.decimals),
      haveReference && f.noReference === undefined ? formatRatio(s.ratio) : "n/a",
      f.target === undefined
        ? ""
        : `≤ ${f.target.toFixed(1)}×${s.targetMet === undefined ? "" : s.targetMet ? " met" : " missed"}`,
      reps.join(", "),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const left = (i: number) => i === 0 || i >= 4;
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (left(i) ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(" | ")} |`;
  return [
    line(header),
    `|${widths.map((w, i) => (left(i) ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`,
    ...rows.map(line),
  ].join("\n");
}

/** Three decimals for JSON; null when unavailable. */
export function round(value: number | undefined): number | null {
  return value === undefined || !Number.isFinite(value) ? null : Math.round(value * 1000) / 1000;
}

export function figureJson(f: Figure): Record<string, unknown> {
  const s = summarize(f);
  return {
    key: f.key,
    label: f.label,
    unit: f.unit,
    better: f.better,
    target: f.target ?? null,
    targetMet: s.targetMet ?? null,
    portcullis: round(s.portcullis),
    nginx: round(s.reference),
    ratio: round(s.ratio),
    repetitions: {
      portcullis: f.portcullis.map(round),
      nginx: f.reference.map(round),
      ratio: s.ratios.map(round),
    },
    ...(f.noReference !== undefined ? { noReference: f.noReference } : {}),
  };
}

/** The commit measured, and whether src/ differed from it or dist/ (what the bench runs) is older than src/. */
export function sourceState(root: string): {
  commit: string | null;
  srcModified: boolean;
  staleDist: boolean;
} {
  const git = (...args: string[]) => {
    try {
      return execFileSync("git", args, {
        cwd: root,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      }).trim();
    } catch {
      return undefined;
    }
  };
  const newest = (dir: string, accept: (name: string) => boolean): number => {
    let latest = 0;
    const walk = (d: string) => {
      for (const entry of readdirSync(d, { withFileTypes: true })) {
        const path = join(d, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (accept(entry.name)) latest = Math.max(latest, statSync(path).mtimeMs);
      }
    };
    try {
      walk(dir);
    } catch {
      // missing
    }
    return latest;
  };
  const src = newest(join(root, "src"), (n) => n.endsWith(".ts") && !n.endsWith(".test.ts"));
  const dist = newest(join(root, "dist"), (n) => n.endsWith(".js"));
  return {
    commit: git("rev-parse", "--short=12", "HEAD") ?? null,
    srcModified: (git("status", "--porcelain", "--", "src") ?? "") !== "",
    staleDist: dist === 0 || src > dist,
  };
}

/**
 * JSON as the project's formatter (biome, a devDependency) writes it, so that `npm run lint` passes on the
 * committed results; plain two-space JSON when biome cannot be run.
 */
export function formattedJson(value: unknown, path: string, root: string): string {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  const biome = join(root, "node_modules", "@biomejs", "biome", "bin", "biome");
  const out = spawnSync(process.execPath, [biome, "format", `--stdin-file-path=${path}`], {
    cwd: root,
    input: text,
    encoding: "utf8",
  });
  return out.status === 0 && out.stdout.trim().startsWith("{") ? out.stdout : text;
}

/** `<dir>/<name>-<stamp>.{json,md}` and `<dir>/latest.{json,md}`; returns the dated paths. */
export function writeResults(
  root: string,
  dir: string,
  name: string,
  stamp: string,
  json: unknown,
  markdown: string,
): { json: string; markdown: string } {
  mkdirSync(dir, { recursive: true });
  const paths = { json: join(dir, `${name}-${stamp}.json`), markdown: join(dir, `${name}-${stamp}.md`) };
  const text = formattedJson(json, paths.json, root);
  writeFileSync(paths.json, text);
  writeFileSync(paths.markdown, markdown);
  writeFileSync(join(dir, "latest.json"), text);
  writeFileSync(join(dir, "latest.md"), markdown);
  return paths;
}
