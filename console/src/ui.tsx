// Small pieces the pages share.
import type { ComponentChildren } from "preact";
import { ApiError } from "./api.ts";
import { ago, formatDateTime } from "./format.ts";
import { explain, reasonMessage } from "./reasons.ts";

export function ErrorNote({ error, what }: { error: Error | undefined; what: string }) {
  if (!error) return null;
  const detail =
    error instanceof ApiError && error.status === 404
      ? `${error.message} (this gateway's admin API may be older than the console)`
      : error.message;
  return (
    <p role="alert" class="error">
      Could not load {what}: {detail}
    </p>
  );
}

export function Tile({
  title,
  children,
  tone,
}: {
  title: string;
  children: ComponentChildren;
  tone?: "ok" | "bad" | "warn";
}) {
  return (
    <section class={`tile${tone ? ` tone-${tone}` : ""}`} aria-label={title}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge status-${status}`}>{status}</span>;
}

export function When({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span>never</span>;
  return (
    <time dateTime={iso} title={formatDateTime(iso)}>
      {ago(iso)}
    </time>
  );
}

/** A reason code with its message and the doc's explanation. */
export function Reason({ code, brief }: { code: string | undefined; brief?: boolean }) {
  if (!code) return <span>—</span>;
  return (
    <span class="reason">
      <code class="reason-code">{code}</code>
      {!brief && <span class="reason-message"> {reasonMessage(code)}</span>}
      <span class="reason-explain">{explain(code)}</span>
    </span>
  );
}

/** A table in a wrapper that scrolls sideways on narrow screens (keyboard-reachable). */
export function TableBox({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard
    <section class="table-box" aria-label={label} tabIndex={0}>
      {children}
    </section>
  );
}
