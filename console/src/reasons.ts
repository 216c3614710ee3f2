// Reason codes and their explanations, generated at build time from docs/reason-codes.md.
import codes from "virtual:reason-codes";

export const reasonCodes: readonly string[] = Object.keys(codes).sort();

export function explain(code: string | undefined): string {
  if (!code) return "";
  return codes[code]?.when ?? "no explanation in docs/reason-codes.md";
}

export function reasonMessage(code: string | undefined): string {
  return (code && codes[code]?.message) || "";
}
