// Live denials: the admin API's Server-Sent Events (GET /decisions/stream?result=deny), newest first, at
// most MAX_ROWS rows, filterable by reason, route and device, each with its reason's explanation from
// docs/reason-codes.md. Pause holds new rows back without closing the stream.
import { useEffect, useRef, useState } from "preact/hooks";
import { getJson, withQuery } from "../api.ts";
import { formatTime, short } from "../format.ts";
import { reasonCodes } from "../reasons.ts";
import { deviceHref } from "../router.ts";
import type { DecisionRecord } from "../types.ts";
import { Reason } from "../ui.tsx";

export const MAX_ROWS = 500;

interface Row {
  readonly key: number;
  readonly record: DecisionRecord;
}

interface Filters {
  readonly reason: string;
  readonly route: string;
  readonly device: string;
}

type Connection = "connecting" | "live" | "reconnecting" | "closed";

const CONNECTION_TEXT: Record<Connection, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Connection lost, reconnecting…",
  closed: "The stream was closed by the gateway (it may have too many open streams, or has restarted).",
};

let nextKey = 0;

export function DenialsPage() {
  const [draft, setDraft] = useState<Filters>({ reason: "", route: "", device: "" });
  const [filters, setFilters] = useState<Filters>(draft);
  const [rows, setRows] = useState<readonly Row[]>([]);
  const [held, setHeld] = useState<readonly Row[]>([]);
  const [paused, setPaused] = useState(false);
  const [dropped, setDropped] = useState(0);
  const [connection, setConnection] = useState<Connection>("connecting");
  const [attempt, setAttempt] = useState(0);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;

  useEffect(() => {
    const source = new EventSource(
      withQuery("/decisions/stream", {
        result: "deny",
        reason: filters.reason,
        route: filters.route,
        device: filters.device,
      }),
    );
    setConnection("connecting");
    source.onopen = () => setConnection("live");
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        setConnection("closed");
        // A 401 here means the session ended: this request sends the user back to the login form.
        void getJson("/console/session").catch(() => undefined);
      } else {
        setConnection("reconnecting");
      }
    };
    source.addEventListener("decision", (event) => {
      let record: DecisionRecord;
      try {
        record = JSON.parse((event as MessageEvent<string>).data) as DecisionRecord;
      } catch {
        return;
      }
      const row = { key: nextKey++, record };
      if (pausedRef.current) setHeld((h) => [row, ...h].slice(0, MAX_ROWS));
      else setRows((r) => [row, ...r].slice(0, MAX_ROWS));
    });
    source.addEventListener("dropped", (event) => {
      try {
        const { count } = JSON.parse((event as MessageEvent<string>).data) as { count: number };
        if (Number.isFinite(count)) setDropped((d) => d + count);
      } catch {
        // Not ours to fix: ignore.
      }
    });
    return () => source.close();
  }, [filters, attempt]);

  const resume = () => {
    setRows((r) => [...held, ...r].slice(0, MAX_ROWS));
    setHeld([]);
    setPaused(false);
  };
  const apply = (event: Event) => {
    event.preventDefault();
    setRows([]);
    setHeld([]);
    setDropped(0);
    setFilters({ reason: draft.reason, route: draft.route.trim(), device: draft.device.trim() });
  };
  const set = (key: keyof Filters) => (e: Event) =>
    setDraft({ ...draft, [key]: (e.currentTarget as HTMLInputElement | HTMLSelectElement).value });

  return (
    <>
      <h1>Live denials</h1>
      <form class="card search" onSubmit={apply} aria-label="Filter denials">
        <div class="field">
          <label for="d-reason">Reason</label>
          <select id="d-reason" value={draft.reason} onChange={set("reason")}>
            <option value="">any</option>
            {reasonCodes.map((code) => (
              <option key={code} value={code}>
                {code}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="d-route">Route</label>
          <input id="d-route" type="text" value={draft.route} onInput={set("route")} autocomplete="off" />
        </div>
        <div class="field">
          <label for="d-device">Device id</label>
          <input id="d-device" type="text" value={draft.device} onInput={set("device")} autocomplete="off" />
        </div>
        <div class="actions">
          <button type="submit" class="primary">
            Apply filters
          </button>
        </div>
      </form>

      <div class="stream-bar">
        <p class={`connection connection-${connection}`} role="status" data-testid="stream-state">
          {CONNECTION_TEXT[connection]}
          {connection === "closed" && (
            <>
              {" "}
              <button type="button" onClick={() => setAttempt((a) => a + 1)}>
                Reconnect
              </button>
            </>
          )}
        </p>
        <button type="button" aria-pressed={paused} onClick={() => (paused ? resume() : setPaused(true))}>
          {paused ? `Resume (${held.length} new)` : "Pause"}
        </button>
        <button
          type="button"
          onClick={() => {
            setRows([]);
            setHeld([]);
          }}
        >
          Clear
        </button>
      </div>
      {dropped > 0 && (
        <p class="notice" role="status">
          {dropped} denial{dropped === 1 ? " was" : "s were"} dropped because the console fell behind.
        </p>
      )}
      <p class="muted">
        Newest first; the latest {MAX_ROWS} are kept. {rows.length === 0 && "Waiting for denials…"}
      </p>
      <div role="log" aria-live="polite" aria-relevant="additions" aria-label="Denials">
        <ol class="stream" data-testid="denials">
          {rows.map(({ key, record: d }) => (
            <li key={key} class="denial" data-reason={d.reason} data-testid="denial">
              <div class="denial-head">
                <time dateTime={d.at}>{formatTime(d.at)}</time>
                <Reason code={d.reason} />
              </div>
              <dl class="denial-facts">
                <dt>Route</dt>
                <dd>{d.route ?? "—"}</dd>
                <dt>Host</dt>
                <dd>{d.host ?? "—"}</dd>
                {d.deviceId && (
                  <>
                    <dt>Device</dt>
                    <dd>
                      <a href={deviceHref(d.deviceId)}>{d.deviceId}</a>
                    </dd>
                  </>
                )}
                {d.subject && (
                  <>
                    <dt>Subject</dt>
                    <dd class="wrap">{d.subject}</dd>
                  </>
                )}
                {d.fingerprint && (
                  <>
                    <dt>Fingerprint</dt>
                    <dd>
                      <code title={d.fingerprint}>{short(d.fingerprint)}</code>
                    </dd>
                  </>
                )}
                {d.detail && (
                  <>
                    <dt>Detail</dt>
                    <dd class="wrap">{d.detail}</dd>
                  </>
                )}
                {!d.enforced && (
                  <>
                    <dt>Enforced</dt>
                    <dd>no (report-only route: the request passed)</dd>
                  </>
                )}
              </dl>
            </li>
          ))}
        </ol>
      </div>
    </>
  );
}
