// One device: its bindings, groups, last seen and status, a status change behind a confirmation dialog
// (PATCH with If-Match and the CSRF token), and its recent decisions.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, getJson, request, withQuery } from "../api.ts";
import { formatDateTime } from "../format.ts";
import { useLoad } from "../hooks.ts";
import type { DecisionRecord, Device, DeviceStatus } from "../types.ts";
import { ErrorNote, Reason, StatusBadge, TableBox, When } from "../ui.tsx";

const ACTIONS: readonly { to: DeviceStatus; label: string; explain: string; danger?: boolean }[] = [
  {
    to: "active",
    label: "Activate",
    explain: "The device's certificate passes routes that require a registered device again.",
  },
  {
    to: "suspended",
    label: "Suspend",
    danger: true,
    explain:
      "Suspending closes the device's open connections at once, on every gateway sharing the device store, and refuses its next requests (403 device_suspended) until it is activated again.",
  },
  {
    to: "revoked",
    label: "Revoke",
    danger: true,
    explain:
      "Revoking closes the device's open connections at once, on every gateway sharing the device store, and refuses its requests (403 device_revoked). Revocation is meant to be final: re-activating a revoked device should be the exception.",
  },
];

export function DevicePage({ id }: { id: string }) {
  const [device, setDevice] = useState<Device | undefined>(undefined);
  const [notice, setNotice] = useState("");
  const loaded = useLoad((signal) => getJson<Device>(`/devices/${encodeURIComponent(id)}`, signal), [id]);
  useEffect(() => {
    if (loaded.data) setDevice(loaded.data);
  }, [loaded.data]);
  const decisions = useLoad(
    (signal) =>
      getJson<{ decisions: DecisionRecord[] }>(withQuery("/decisions", { device: id, limit: 20 }), signal),
    [id, device?.version],
  );

  if (!device) {
    return (
      <>
        <p>
          <a href="#/devices">← Devices</a>
        </p>
        <h1>{id}</h1>
        {loaded.loading ? (
          <p role="status">Loading…</p>
        ) : (
          <ErrorNote error={loaded.error} what={`device ${id}`} />
        )}
      </>
    );
  }

  return (
    <>
      <p>
        <a href="#/devices">← Devices</a>
      </p>
      <h1>
        {device.id} <StatusBadge status={device.status} />
      </h1>
      <p role="status" class="notice-line">
        {notice}
      </p>

      <section class="card" aria-labelledby="details-heading">
        <h2 id="details-heading">Details</h2>
        <dl class="facts">
          <dt>Status</dt>
          <dd data-testid="device-status">{device.status}</dd>
          <dt>Last seen</dt>
          <dd>
            <When iso={device.lastSeenAt} />
            {device.lastSeenAt && <span class="muted"> ({formatDateTime(device.lastSeenAt)})</span>}
          </dd>
          <dt>Groups</dt>
          <dd>{device.groups.length ? device.groups.join(", ") : "none"}</dd>
          <dt>Created</dt>
          <dd>{formatDateTime(device.createdAt)}</dd>
          <dt>Updated</dt>
          <dd>
            {formatDateTime(device.updatedAt)} (version {device.version})
          </dd>
          {Object.keys(device.metadata).length > 0 && (
            <>
              <dt>Metadata</dt>
              <dd>
                <pre class="metadata">{JSON.stringify(device.metadata, null, 2)}</pre>
              </dd>
            </>
          )}
        </dl>
      </section>

      <section class="card" aria-labelledby="bindings-heading">
        <h2 id="bindings-heading">Bindings</h2>
        {device.bindings.length === 0 ? (
          <p>No bindings: no certificate maps to this device.</p>
        ) : (
          <ul class="bindings">
            {device.bindings.map((b) => (
              <li key={`${b.kind}:${b.value}`}>
                <span class="badge">{b.kind}</span> <code class="wrap">{b.value}</code>
              </li>
            ))}
          </ul>
        )}
      </section>

      <StatusChange
        device={device}
        onChanged={(next) => {
          setDevice(next);
          setNotice(`${next.id} is now ${next.status}.`);
        }}
        onConflict={() => {
          setNotice("The device changed since this page loaded; it has been reloaded. Try again.");
          loaded.reload();
        }}
      />

      <section class="card" aria-labelledby="decisions-heading">
        <h2 id="decisions-heading">Recent decisions</h2>
        <button type="button" onClick={decisions.reload}>
          Refresh
        </button>
        <ErrorNote error={decisions.error} what="the device's decisions" />
        {decisions.data && decisions.data.decisions.length === 0 && (
          <p>No recent decisions for this device (the gateway keeps the latest ones in memory).</p>
        )}
        {decisions.data && decisions.data.decisions.length > 0 && (
          <TableBox label="Recent decisions">
            <table>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Result</th>
                  <th scope="col">Route</th>
                  <th scope="col">Reason</th>
                </tr>
              </thead>
              <tbody>
                {decisions.data.decisions.map((d, i) => (
                  <tr key={`${d.at}-${i}`}>
                    <td>
                      <time dateTime={d.at}>{formatDateTime(d.at)}</time>
                    </td>
                    <td>
                      <span class={d.allow ? "allow" : "deny"}>{d.allow ? "allowed" : "denied"}</span>
                      {!d.enforced && " (report-only)"}
                    </td>
                    <td>{d.route ?? "—"}</td>
                    <td>
                      <Reason code={d.reason} brief />
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

function StatusChange({
  device,
  onChanged,
  onConflict,
}: {
  device: Device;
  onChanged: (d: Device) => void;
  onConflict: () => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const [action, setAction] = useState<(typeof ACTIONS)[number] | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");

  const open = (a: (typeof ACTIONS)[number]) => {
    setAction(a);
    setError("");
  };
  // Opened once its content is rendered, so that focus lands on Cancel (the safe choice).
  useEffect(() => {
    if (action && !dialog.current?.open) dialog.current?.showModal();
  }, [action]);
  const close = () => dialog.current?.close();
  const confirm = async () => {
    if (!action) return;
    setBusy(true);
    setError("");
    try {
      const { data } = await request<Device>(`/devices/${encodeURIComponent(device.id)}`, {
        method: "PATCH",
        headers: { "if-match": `"${device.version}"` },
        body: { status: action.to },
      });
      close();
      onChanged(data);
      // The button that opened the dialog is gone (the status changed): keep the focus in this section.
      setTimeout(() => heading.current?.focus(), 0);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 409 || err.status === 412)) {
        close();
        onConflict();
      } else {
        setError(err instanceof Error ? err.message : String(err));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="card" aria-labelledby="status-heading">
      <h2 id="status-heading" ref={heading} tabIndex={-1}>
        Change status
      </h2>
      <div class="actions">
        {ACTIONS.filter((a) => a.to !== device.status).map((a) => (
          <button type="button" key={a.to} class={a.danger ? "danger" : undefined} onClick={() => open(a)}>
            {a.label}
          </button>
        ))}
      </div>
      <dialog
        ref={dialog}
        aria-labelledby="confirm-title"
        aria-describedby="confirm-text"
        onClose={() => {
          setBusy(false);
          setAction(undefined);
        }}
      >
        {action && (
          <div class="dialog-body">
            <h2 id="confirm-title">
              {action.label} {device.id}?
            </h2>
            <p id="confirm-text">{action.explain}</p>
            {error && (
              <p role="alert" class="error">
                {error}
              </p>
            )}
            <div class="actions">
              <button type="button" onClick={close} autofocus>
                Cancel
              </button>
              <button
                type="button"
                class={action.danger ? "danger" : "primary"}
                onClick={confirm}
                disabled={busy}
              >
                {busy ? "Working…" : `${action.label} ${device.id}`}
              </button>
            </div>
          </div>
        )}
      </dialog>
    </section>
  );
}
