// Trust: each trust store's CA certificates with their expiry, and its revocation sources' freshness
// (CRLs loaded, configured sources without a CRL, OCSP settings).
import { getJson } from "../api.ts";
import { formatDateTime, short } from "../format.ts";
import { useLoad } from "../hooks.ts";
import type { Trust, TrustStore } from "../types.ts";
import { ErrorNote, TableBox, When } from "../ui.tsx";

export function TrustPage() {
  const trust = useLoad((s) => getJson<Trust>("/trust", s), [], 30_000);
  return (
    <>
      <h1>Trust</h1>
      <ErrorNote error={trust.error} what="the trust stores" />
      {trust.loading && !trust.data && <p role="status">Loading…</p>}
      {trust.data?.trustStores.length === 0 && <p>No trust stores are configured.</p>}
      {trust.data?.trustStores.map((store) => (
        <TrustStoreCard key={store.name} store={store} />
      ))}
    </>
  );
}

function daysClass(days: number): string {
  return days < 0 ? "deny" : days <= 30 ? "warn" : "";
}

function TrustStoreCard({ store }: { store: TrustStore }) {
  const id = `store-${store.name.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  const revocation = store.revocation;
  const ocsp = revocation?.ocsp;
  const missing = revocation?.sources?.filter((s) => !s.loaded) ?? [];
  return (
    <section class="card" aria-labelledby={id}>
      <h2 id={id}>
        Trust store <code>{store.name}</code>
      </h2>
      <h3>CA certificates</h3>
      <TableBox label={`CA certificates of ${store.name}`}>
        <table>
          <thead>
            <tr>
              <th scope="col">Subject</th>
              <th scope="col">Kind</th>
              <th scope="col">Not after</th>
              <th scope="col" class="num">
                Days left
              </th>
              <th scope="col">Fingerprint</th>
            </tr>
          </thead>
          <tbody>
            {store.cas.map((ca) => (
              <tr key={ca.fingerprint}>
                <th scope="row" class="wrap">
                  {ca.subject}
                </th>
                <td>{ca.kind ?? "—"}</td>
                <td>{formatDateTime(ca.notAfter)}</td>
                <td class={`num ${daysClass(ca.daysLeft)}`}>{ca.daysLeft}</td>
                <td>
                  <code title={ca.fingerprint}>{short(ca.fingerprint)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableBox>

      <h3>Revocation</h3>
      <dl class="facts">
        <dt>Mode</dt>
        <dd>
          <strong>{revocation?.mode ?? "off"}</strong>
          {revocation?.scope && (
            <> (checks the {revocation.scope === "chain" ? "whole chain" : "leaf only"})</>
          )}
        </dd>
        <dt>OCSP</dt>
        <dd>
          {ocsp?.enabled ? (
            <>
              on{ocsp.responder ? <>, responder {ocsp.responder}</> : ", responders from the certificates"}
              {ocsp.maxAgeSeconds !== undefined && <>, answers kept at most {ocsp.maxAgeSeconds} s</>}
              {ocsp.cachedResponses !== undefined && <>, {ocsp.cachedResponses} cached</>}
            </>
          ) : (
            "off"
          )}
        </dd>
      </dl>
      {revocation?.error && (
        <p role="alert" class="error">
          {revocation.error}
        </p>
      )}
      {missing.length > 0 && (
        <p class="error">No CRL loaded from: {missing.map((s) => s.source).join(", ")}</p>
      )}
      {revocation?.crls && revocation.crls.length > 0 ? (
        <TableBox label={`CRLs of ${store.name}`}>
          <table>
            <thead>
              <tr>
                <th scope="col">CRL issuer</th>
                <th scope="col">Source</th>
                <th scope="col">This update</th>
                <th scope="col">Next update</th>
                <th scope="col">Fresh</th>
                <th scope="col" class="num">
                  Revoked
                </th>
              </tr>
            </thead>
            <tbody>
              {revocation.crls.map((crl) => (
                <tr key={`${crl.issuer}-${crl.source}`}>
                  <th scope="row" class="wrap">
                    {crl.issuer}
                  </th>
                  <td class="wrap">{crl.source}</td>
                  <td>
                    <When iso={crl.thisUpdate} />
                  </td>
                  <td>{crl.nextUpdate ? formatDateTime(crl.nextUpdate) : "—"}</td>
                  <td>
                    <span class={crl.fresh ? "allow" : "deny"}>{crl.fresh ? "fresh" : "stale"}</span>
                  </td>
                  <td class="num">{crl.revoked}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </TableBox>
      ) : (
        revocation?.mode !== "off" && <p>No CRL loaded for this trust store.</p>
      )}
    </section>
  );
}
