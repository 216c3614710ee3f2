// Compares two V8 heap snapshots (.heapsnapshot) the way DevTools' "Comparison" view does: the objects of
// the second that the first did not have (by node id), grouped by type and constructor or function name,
// with their count and shallow size, optionally per connection.
//   node bench/lib/heap-diff.ts BEFORE.heapsnapshot AFTER.heapsnapshot [PER] [--top N]
import { readFileSync } from "node:fs";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface HeapGroup {
  readonly key: string;
  readonly count: number;
  readonly bytes: number;
}

function load(file: string): Snapshot {
  return JSON.parse(readFileSync(file, "utf8")) as Snapshot;
}

function ids(s: Snapshot): Set<number> {
  const fields = s.snapshot.meta.node_fields;
  const width = fields.length;
  const idAt = fields.indexOf("id");
  const out = new Set<number>();
  for (let i = 0; i < s.nodes.length; i += width) out.add(s.nodes[i + idAt] ?? -1);
  return out;
}

/** Groups the objects of `after` that are not in `before` by "type name". */
export function heapDiff(beforeFile: string, afterFile: string): HeapGroup[] {
  const known = ids(load(beforeFile));
  const s = load(afterFile);
  const fields = s.snapshot.meta.node_fields;
  const width = fields.length;
  const [typeAt, nameAt, idAt, sizeAt] = ["type", "name", "id", "self_size"].map((f) => fields.indexOf(f));
  const types = s.snapshot.meta.node_types[0];
  const groups = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < s.nodes.length; i += width) {
    if (known.has(s.nodes[i + (idAt ?? 0)] ?? -1)) continue;
    const type = types[s.nodes[i + (typeAt ?? 0)] ?? 0] ?? "?";
    let name = s.strings[s.nodes[i + (nameAt ?? 0)] ?? 0] ?? "?";
    // Strings and numbers are named by their value: group them by type only.
    if (type === "string" || type === "concatenated string" || type === "sliced string" || type === "number")
      name = "";
    if (name.length > 60) name = `${name.slice(0, 57)}...`;
    const key = `${type} ${name}`.trim();
    const group = groups.get(key) ?? { count: 0, bytes: 0 };
    group.count++;
    group.bytes += s.nodes[i + (sizeAt ?? 0)] ?? 0;
    groups.set(key, group);
  }
  return [...groups.entries()]
    .map(([key, g]) => ({ key, count: g.count, bytes: g.bytes }))
    .sort((a, b) => b.bytes - a.bytes);
}

/** A text table of the biggest groups, per `per` (connections), with the total. */
export function formatHeapDiff(groups: readonly HeapGroup[], per: number, top: number): string {
  const total = groups.reduce((n, g) => n + g.bytes, 0);
  const lines = [`new objects per connection (of ${per}): ${(total / per).toFixed(0)} bytes in all`];
  lines.push(`${"bytes".padStart(8)} ${"count".padStart(7)}  type and name`);
  for (const g of groups.slice(0, top))
    lines.push(
      `${(g.bytes / per).toFixed(0).padStart(8)} ${(g.count / per).toFixed(2).padStart(7)}  ${g.key}`,
    );
  return lines.join("\n");
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const topAt = args.indexOf("--top");
  const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 40;
  const [before, after, per] = args;
  if (!before || !after) {
    console.error(
      "usage: node bench/lib/heap-diff.ts BEFORE.heapsnapshot AFTER.heapsnapshot [PER] [--top N]",
    );
    process.exit(2);
  }
  console.log(formatHeapDiff(heapDiff(before, after), Number(per ?? 1) || 1, top));
}
