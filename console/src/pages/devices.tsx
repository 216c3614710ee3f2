// Devices: server-side search (id prefix, status, group, certificate fingerprint), paged with the API's
// `next` cursor, so it stays fast over 100,000 devices.
import { useState } from "preact/hooks";
import { getJson, withQuery } from "../api.ts";
import { useLoad } from "../hooks.ts";
import { deviceHref } from "../router.ts";
import type { DevicePage } from "../types.ts";
import { ErrorNote, StatusBadge, TableBox, When } from "../ui.tsx";

const PAGE_SIZE = 50;

interface Filters {
  readonly idPrefix: string;
  readonly status: string;
  readonly group: string;
  readonly fingerprint: string;
}

const EMPTY: Filters = { idPrefix: "", status: "", group: "", fingerprint: "" };

/** The search in force, kept while the console is open so that "back" from a device finds it again. */
let saved: { filters: Filters; cursors: readonly (string | undefined)[] } = {
  filters: EMPTY,
  cursors: [undefined],
};

/** A SHA-256 fingerprint as the API stores it (lower-case hex, no colons), or undefined when it is not one. */
export function normalizeFingerprint(text: string): string | undefined {
  const hex = text.trim().replace(/:/g, "").toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
}

export function DevicesPage() {
  const [draft, setDraft] = useState<Filters>(saved.filters);
  const [filters, setFilters] = useState<Filters>(saved.filters);
  const [cursors, setCursors] = useState(saved.cursors);
  const [formError, setFormError] = useState("");
  saved = { filters, cursors };
  const after = cursors[cursors.length - 1];

  const page = useLoad(
    (signal) =>
      getJson<DevicePage>(
        withQuery("/devices", {
          idPrefix: filters.idPrefix,
          status: filters.status,
          group: filters.group,
          binding: filters.fingerprint ? `fingerprint:${filters.fingerprint}` : undefined,
          after,
          limit: PAGE_SIZE,
        }),
        signal,
      ),
    [filters, after],
  );

  const search = (event: Event) => {
    event.preventDefault();
    let fingerprint = "";
    if (draft.fingerprint.trim()) {
      const normalized = normalizeFingerprint(draft.fingerprint);
      if (!normalized) {
        setFormError("A fingerprint is the certificate's SHA-256: 64 hex digits (colons allowed).");
        return;
      }
      fingerprint = normalized;
    }
    setFormError("");
    setFilters({ ...draft, idPrefix: draft.idPrefix.trim(), group: draft.group.trim(), fingerprint });
    setCursors([undefined]);
  };
  const set = (key: keyof Filters) => (e: Event) =>
    setDraft({ ...draft, [key]: (e.currentTarget as HTMLInputElement | HTMLSelectElement).value });

  const devices = page.data?.devices ?? [];
  const pageNumber = cursors.length;
  return (
    <>
      <h1>Devices</h1>
      <form class="card search" onSubmit={search} aria-label="Search devices">
        <div class="field">
          <label for="f-id">Id starts with</label>
          <input
            id="f-id"
            type="search"
            value={draft.idPrefix}
            onInput={set("idPrefix")}
            autocomplete="off"
          />
        </div>
        <div class="field">
          <label for="f-status">Status</label>
          <select id="f-status" value={draft.status} onChange={set("status")}>
            <option value="">any</option>
            <option value="active">active</option>
            <option value="suspended">suspended</option>
            <option value="revoked">revoked</option>
            <option value="pending">pending</option>
          </select>
        </div>
        <div class="field">
          <label for="f-group">Group</label>
          <input id="f-group" type="text" value={draft.group} onInput={set("group")} autocomplete="off" />
        </div>
        <div class="field wide">
          <label for="f-fp">Certificate fingerprint (SHA-256)</label>
          <input
            id="f-fp"
            type="text"
            value={draft.fingerprint}
            onInput={set("fingerprint")}
            autocomplete="off"
            spellcheck={false}
            aria-invalid={formError ? "true" : undefined}
            aria-describedby={formError ? "f-fp-error" : undefined}
          />
        </div>
        <div class="actions">
          <button type="submit" class="primary">
            Search
          </button>
          <button
            type="button"
            onClick={() => {
              setDraft(EMPTY);
              setFilters(EMPTY);
              setCursors([undefined]);
              setFormError("");
            }}
          >
            Clear
          </button>
        </div>
        {formError && (
          <p id="f-fp-error" role="alert" class="error">
            {formError}
          </p>
        )}
      </form>

      <section aria-labelledby="results-heading">
        <h2 id="results-heading">
          Results <span class="muted">(page {pageNumber})</span>
        </h2>
        <ErrorNote error={page.error} what="the devices" />
        <p role="status" class="muted">
          {page.loading
            ? "Loading…"
            : `${devices.length} device${devices.length === 1 ? "" : "s"} on this page`}
        </p>
        {devices.length > 0 && (
          <TableBox label="Devices">
            <table data-testid="devices-table">
              <thead>
                <tr>
                  <th scope="col">Device</th>
                  <th scope="col">Status</th>
                  <th scope="col">Groups</th>
                  <th scope="col">Last seen</th>
                </tr>
              </thead>
              <tbody>
                {devices.map((d) => (
                  <tr key={d.id}>
                    <th scope="row">
                      <a href={deviceHref(d.id)}>{d.id}</a>
                    </th>
                    <td>
                      <StatusBadge status={d.status} />
                    </td>
                    <td>{d.groups.join(", ") || "—"}</td>
                    <td>
                      <When iso={d.lastSeenAt} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableBox>
        )}
        <nav class="pager" aria-label="Pages of devices">
          <button
            type="button"
            disabled={cursors.length <= 1}
            onClick={() => setCursors(cursors.slice(0, -1))}
          >
            Previous page
          </button>
          <button
            type="button"
            disabled={!page.data?.next || page.loading}
            onClick={() => page.data?.next && setCursors([...cursors, page.data.next])}
          >
            Next page
          </button>
        </nav>
      </section>
    </>
  );
}
