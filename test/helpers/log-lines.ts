// The JSON log lines a gateway process wrote, and waiting for one.
import assert from "node:assert/strict";
import type { GatewayProcess } from "./gateway-process.ts";

export type Line = Record<string, unknown>;

export function lines(gw: GatewayProcess): Line[] {
  return gw
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Line);
}

export async function waitForLine(
  gw: GatewayProcess,
  match: (l: Line) => boolean,
  what: string,
): Promise<Line> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const found = lines(gw).find(match);
    if (found) return found;
    if (Date.now() > deadline) assert.fail(`no log line ${what} in:\n${gw.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
