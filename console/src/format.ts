// Dates and numbers as the console shows them: local time, and "3 min ago" where recency matters.
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const time = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const number = new Intl.NumberFormat();

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d);
}

export function formatTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : time.format(d);
}

export function formatNumber(n: number | undefined): string {
  return n === undefined ? "—" : number.format(n);
}

/** "12 s ago", "3 min ago", "5 h ago", "2 d ago"; "in 3 d" for the future. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "never";
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return iso;
  const seconds = Math.round((now - t) / 1000);
  const abs = Math.abs(seconds);
  const text =
    abs < 60
      ? `${abs} s`
      : abs < 3600
        ? `${Math.floor(abs / 60)} min`
        : abs < 86400
          ? `${Math.floor(abs / 3600)} h`
          : `${Math.floor(abs / 86400)} d`;
  return seconds >= 0 ? `${text} ago` : `in ${text}`;
}

/** A long hex fingerprint cut for a table cell (the full value stays in the title). */
export function short(value: string, keep = 16): string {
  return value.length > keep + 1 ? `${value.slice(0, keep)}…` : value;
}
