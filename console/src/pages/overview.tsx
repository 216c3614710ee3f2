// Overview: decisions per minute (chart), the top reasons, and tiles for connections, store, revocation,
// last reload and device counts; refreshed every 10 s.
import { useMemo, useState } from "preact/hooks";
import type uPlot from "uplot";
import { getJson } from "../api.ts";
import { Chart } from "../chart.tsx";
import { formatNumber } from "../format.ts";
import { useLoad } from "../hooks.ts";
import { explain } from "../reasons.ts";
import type { DecisionSummary, FleetSummary, Status, Trust } from "../types.ts";
import { ErrorNote, Tile, When } from "../ui.tsx";

const REFRESH_MS = 10_000;
export const ALLOW_COLOR = "#1a7f37";
export const DENY_COLOR = "#c62828";

/** The chart's time windows, in minutes (the API keeps 60). */
const WINDOWS = [15, 30, 60] as const;
/** The window chosen, kept while the console is open. */
let windowMinutes = 60;

/** Line colours of the top reasons' series (dashed), apart from the allow and deny colours. */
const REASON_COLORS = ["#6a3d9a", "#b15928", "#1f78b4", "#8a6d00"];
/** How many of the hour's top reasons get a line of their own. */
const CHARTED_REASONS = REASON_COLORS.length;

function decisionsChart(reasons: readonly string[]) {
  return (width: number): uPlot.Options => ({
    width,
    height: 260,
    series: [
      {},
      {
        label: "allowed",
        stroke: ALLOW_COLOR,
        fill: "rgba(26,127,55,0.08)",
        width: 2,
        points: { show: false },
      },
      {
        label: "denied",
        stroke: DENY_COLOR,
        fill: "rgba(198,40,40,0.08)",
        width: 2,
        points: { show: false },
      },
      ...reasons.map((code, i) => ({
        label: code,
        stroke: REASON_COLORS[i] ?? "#555",
        width: 1.5,
        dash: [5, 4],
        points: { show: false },
      })),
    ],
    scales: { y: { range: (_u, _min, max) => [0, Math.max(5, Math.ceil(max * 1.1))] } },
    axes: [{}, { label: "decisions / min", size: 60 }],
    cursor: { drag: { x: false, y: false } },
  });
}

export function OverviewPage() {
  const [span, setSpan] = useState(windowMinutes);
  windowMinutes = span;
  const summary = useLoad(
    (s) => getJson<DecisionSummary>(`/decisions/summary?minutes=${span}`, s),
    [span],
    REFRESH_MS,
  );
  const status = useLoad((s) => getJson<Status>("/status", s), [], REFRESH_MS);
  const trust = useLoad((s) => getJson<Trust>("/trust", s), [], REFRESH_MS);
  const fleet = useLoad((s) => getJson<FleetSummary>("/fleet/summary", s), [], REFRESH_MS);

  const minutes = summary.data?.minutes;
  const totals = useMemo(() => {
    const reasons = new Map<string, number>();
    let allow = 0;
    let deny = 0;
    for (const m of minutes ?? []) {
      allow += m.allow;
      deny += m.deny;
      for (const [code, n] of Object.entries(m.reasons)) reasons.set(code, (reasons.get(code) ?? 0) + n);
    }
    const top = [...reasons].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, 8);
    return { allow, deny, top };
  }, [minutes]);
  const charted = totals.top.slice(0, CHARTED_REASONS).map(([code]) => code);
  const chartedKey = charted.join(" ");
  const options = useMemo(() => decisionsChart(chartedKey ? chartedKey.split(" ") : []), [chartedKey]);
  const data = useMemo<uPlot.AlignedData>(() => {
    const list = minutes ?? [];
    return [
      list.map((m) => Date.parse(m.at) / 1000),
      list.map((m) => m.allow),
      list.map((m) => m.deny),
      ...(chartedKey ? chartedKey.split(" ") : []).map((code) => list.map((m) => m.reasons[code] ?? 0)),
    ];
  }, [minutes, chartedKey]);

  const chartLabel = `Decisions per minute over the last ${minutes?.length ?? span} minutes: ${totals.allow} allowed, ${totals.deny} denied in all.`;

  return (
    <>
      <h1>Overview</h1>
      <p class="muted" aria-live="polite">
        Refreshed every 10 seconds
        {status.updatedAt && <> · last at {new Date(status.updatedAt).toLocaleTimeString()}</>}
      </p>
      <div class="tiles">
        <ConnectionsTile status={status.data} error={status.error} />
        <StoreTile status={status.data} error={status.error} />
        <RevocationTile trust={trust.data} error={trust.error} />
        <ReloadTile status={status.data} error={status.error} />
        <DevicesTile fleet={fleet.data} error={fleet.error} />
      </div>

      <section aria-labelledby="decisions-heading" class="card">
        <div class="card-head">
          <h2 id="decisions-heading">Decisions per minute, by result and top reasons</h2>
          <div class="field-inline">
            <label for="window">Window</label>
            <select id="window" value={span} onChange={(e) => setSpan(Number(e.currentTarget.value))}>
              {WINDOWS.map((n) => (
                <option key={n} value={n}>
                  last {n} minutes
                </option>
              ))}
            </select>
          </div>
        </div>
        <ErrorNote error={summary.error} what="the decision summary" />
        <p>
          Last {minutes?.length ?? span} minutes:{" "}
          <strong class="allow">{formatNumber(totals.allow)} allowed</strong>,{" "}
          <strong class="deny">{formatNumber(totals.deny)} denied</strong>.
        </p>
        <Chart options={options} data={data} label={chartLabel} testId="decisions-chart" />
      </section>

      <section aria-labelledby="reasons-heading" class="card">
        <h2 id="reasons-heading">Top reasons for denial</h2>
        {totals.top.length === 0 ? (
          <p>No denials in this window.</p>
        ) : (
          <ol class="reason-list" data-testid="top-reasons">
            {totals.top.map(([code, n]) => (
              <li key={code}>
                <div class="reason-line">
                  <code class="reason-code">{code}</code>
                  <span class="count">
                    {formatNumber(n)} denial{n === 1 ? "" : "s"}
                  </span>
                </div>
                <p class="reason-explain">{explain(code)}</p>
              </li>
            ))}
          </ol>
        )}
      </section>
    </>
  );
}

function ConnectionsTile({ status, error }: { status: Status | undefined; error: Error | undefined }) {
  return (
    <Tile title="Open device connections">
      <p class="big" data-testid="open-connections">
        {formatNumber(status?.connections?.open)}
      </p>
      <p class="muted">on {status?.listeners.length ?? "—"} listeners</p>
      <ErrorNote error={error} what="the status" />
    </Tile>
  );
}

function StoreTile({ status, error }: { status: Status | undefined; error: Error | undefined }) {
  const store = status?.store;
  return (
    <Tile title="Device store" tone={store ? (store.ok ? "ok" : "bad") : undefined}>
      <p class="big">{store ? (store.ok ? "healthy" : "down") : "—"}</p>
      {store && (
        <p class="muted">
          {store.kind}, {store.ok ? "up" : "down"} since <When iso={store.since} />
        </p>
      )}
      {store?.error && <p class="error">{store.error}</p>}
      <ErrorNote error={error} what="the status" />
    </Tile>
  );
}

function RevocationTile({ trust, error }: { trust: Trust | undefined; error: Error | undefined }) {
  const stores = trust?.trustStores ?? [];
  const crls = stores.flatMap((t) => t.revocation?.crls ?? []);
  const stale = crls.filter((c) => !c.fresh).length;
  const missing = stores.flatMap((t) => t.revocation?.sources ?? []).filter((s) => !s.loaded).length;
  const errors = stores.filter((t) => t.revocation?.error).length;
  const ocsp = stores.filter((t) => t.revocation?.mode !== "off" && t.revocation?.ocsp?.enabled).length;
  const checked = crls.length > 0 || ocsp > 0;
  const bad = stale + missing + errors;
  return (
    <Tile
      title="Revocation sources"
      tone={trust ? (bad > 0 ? "bad" : checked ? "ok" : undefined) : undefined}
    >
      <p class="big" data-testid="revocation">
        {trust ? (bad > 0 ? "attention" : checked ? "fresh" : "not checked") : "—"}
      </p>
      {trust && (
        <p class="muted">
          {crls.length} CRL{crls.length === 1 ? "" : "s"} ({crls.length - stale} fresh
          {stale ? `, ${stale} stale` : ""})
          {missing ? `, ${missing} source${missing === 1 ? "" : "s"} without a CRL` : ""}
          {errors ? `, ${errors} with errors` : ""}; OCSP on {ocsp} trust store{ocsp === 1 ? "" : "s"} ·{" "}
          <a href="#/trust">details</a>
        </p>
      )}
      <ErrorNote error={error} what="the trust stores" />
    </Tile>
  );
}

function ReloadTile({ status, error }: { status: Status | undefined; error: Error | undefined }) {
  const reload = status?.lastReload;
  return (
    <Tile title="Last reload" tone={reload ? (reload.result === "ok" ? "ok" : "bad") : undefined}>
      <p class="big">{reload ? (reload.result === "ok" ? "ok" : "rejected") : status ? "none yet" : "—"}</p>
      {reload && (
        <p class="muted">
          <When iso={reload.at} />, config generation {status?.configGeneration}
        </p>
      )}
      {reload?.error && <p class="error">{reload.error}</p>}
      <ErrorNote error={error} what="the status" />
    </Tile>
  );
}

function DevicesTile({ fleet, error }: { fleet: FleetSummary | undefined; error: Error | undefined }) {
  const d = fleet?.devices;
  return (
    <Tile title="Devices">
      <p class="big" data-testid="device-total">
        {formatNumber(d?.total)}
      </p>
      {d && (
        <p class="muted">
          {formatNumber(d.active)} active · {formatNumber(d.suspended)} suspended · {formatNumber(d.revoked)}{" "}
          revoked · {formatNumber(d.pending)} pending
        </p>
      )}
      <ErrorNote error={error} what="the fleet summary" />
    </Tile>
  );
}
