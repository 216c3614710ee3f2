// Certificate expiry: a histogram of days left on the certificates of recently seen and enrolled devices,
// and the devices whose certificate expires within N days.
import { useMemo, useState } from "preact/hooks";
import uPlot from "uplot";
import { getJson } from "../api.ts";
import { Chart } from "../chart.tsx";
import { formatDateTime, formatNumber, short } from "../format.ts";
import { useLoad } from "../hooks.ts";
import { deviceHref } from "../router.ts";
import type { Expiring, ExpiryHistogram } from "../types.ts";
import { ErrorNote, TableBox } from "../ui.tsx";

function histogramChart(labels: readonly string[]) {
  return (width: number): uPlot.Options => ({
    width,
    height: 240,
    series: [
      {},
      {
        label: "certificates",
        stroke: "#1f4e8c",
        fill: "rgba(31,78,140,0.35)",
        width: 1,
        paths: uPlot.paths.bars?.({ size: [0.7, 80] }),
        points: { show: false },
      },
    ],
    scales: {
      x: { time: false, range: () => [-0.5, labels.length - 0.5] },
      y: { range: (_u, _min, max) => [0, Math.max(1, Math.ceil(max * 1.15))] },
    },
    axes: [
      {
        values: (_u, splits) => splits.map((i) => labels[i] ?? ""),
        splits: () => labels.map((_l, i) => i),
        gap: 6,
      },
      {
        label: "certificates",
        size: 56,
        incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10_000, 50_000],
      },
    ],
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
  });
}

export function ExpiryPage() {
  const histogram = useLoad((s) => getJson<ExpiryHistogram>("/fleet/expiry-histogram", s), [], 30_000);
  const [draftDays, setDraftDays] = useState("30");
  const [days, setDays] = useState(30);
  const [daysError, setDaysError] = useState("");
  const expiring = useLoad((s) => getJson<Expiring>(`/fleet/expiring?within=${days}d`, s), [days]);

  const buckets = histogram.data?.buckets;
  const labelsKey = (buckets ?? []).map((b) => b.label).join("\n");
  const options = useMemo(() => histogramChart(labelsKey ? labelsKey.split("\n") : []), [labelsKey]);
  const data = useMemo<uPlot.AlignedData>(
    () => [(buckets ?? []).map((_b, i) => i), (buckets ?? []).map((b) => b.count)],
    [buckets],
  );
  const label = buckets
    ? `Certificates by days left: ${buckets.map((b) => `${b.label}: ${b.count}`).join(", ")}.`
    : "Certificates by days left";

  const submit = (event: Event) => {
    event.preventDefault();
    const n = Number(draftDays);
    if (!Number.isInteger(n) || n < 1 || n > 3650) {
      setDaysError("Enter a whole number of days from 1 to 3650.");
      return;
    }
    setDaysError("");
    setDays(n);
  };

  return (
    <>
      <h1>Certificate expiry</h1>
      <section class="card" aria-labelledby="histogram-heading">
        <h2 id="histogram-heading">Days left</h2>
        <p>
          Certificates of the devices seen in the last 24 hours and those enrollment issued:{" "}
          <strong data-testid="expiry-total">{formatNumber(histogram.data?.total)}</strong>.
        </p>
        <ErrorNote error={histogram.error} what="the expiry histogram" />
        {buckets && <Chart options={options} data={data} label={label} testId="expiry-chart" />}
        {buckets && (
          <ul class="legend-list" aria-label="Certificates per bucket">
            {buckets.map((b) => (
              <li key={b.label}>
                {b.label}: <strong>{formatNumber(b.count)}</strong>
              </li>
            ))}
          </ul>
        )}
      </section>

      <section class="card" aria-labelledby="expiring-heading">
        <h2 id="expiring-heading">Expiring soon</h2>
        <form class="search inline" onSubmit={submit} aria-label="Expiring within">
          <div class="field">
            <label for="within">Expiring within (days)</label>
            <input
              id="within"
              type="number"
              min={1}
              max={3650}
              step={1}
              inputMode="numeric"
              value={draftDays}
              onInput={(e) => setDraftDays(e.currentTarget.value)}
              aria-invalid={daysError ? "true" : undefined}
              aria-describedby={daysError ? "within-error" : undefined}
            />
          </div>
          <div class="actions">
            <button type="submit" class="primary">
              Show
            </button>
          </div>
          {daysError && (
            <p id="within-error" role="alert" class="error">
              {daysError}
            </p>
          )}
        </form>
        <ErrorNote error={expiring.error} what="the expiring certificates" />
        {expiring.data && (
          <p role="status">
            {expiring.data.devices.length} device{expiring.data.devices.length === 1 ? "" : "s"} with a
            certificate expiring within {days} days.
          </p>
        )}
        {expiring.data && expiring.data.devices.length > 0 && (
          <TableBox label="Expiring certificates">
            <table data-testid="expiring-table">
              <thead>
                <tr>
                  <th scope="col">Device</th>
                  <th scope="col">Not after</th>
                  <th scope="col" class="num">
                    Days left
                  </th>
                  <th scope="col">Source</th>
                  <th scope="col">Serial / fingerprint</th>
                </tr>
              </thead>
              <tbody>
                {expiring.data.devices.map((d) => (
                  <tr key={`${d.deviceId}-${d.notAfter}`}>
                    <th scope="row">
                      <a href={deviceHref(d.deviceId)}>{d.deviceId}</a>
                    </th>
                    <td>{formatDateTime(d.notAfter)}</td>
                    <td class={`num${d.daysLeft < 0 ? " deny" : d.daysLeft <= 7 ? " warn" : ""}`}>
                      {d.daysLeft}
                    </td>
                    <td>{d.source}</td>
                    <td>
                      <code title={d.fingerprint}>
                        {d.serial ?? (d.fingerprint ? short(d.fingerprint) : "—")}
                      </code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableBox>
        )}
      </section>
    </>
  );
}
