// The console's shell: the session (login form until there is one), the navigation and the pages.
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, currentSession, login, logout, onUnauthorized, type Session } from "./api.ts";
import { DenialsPage } from "./pages/denials.tsx";
import { DevicePage } from "./pages/device.tsx";
import { DevicesPage } from "./pages/devices.tsx";
import { ExpiryPage } from "./pages/expiry.tsx";
import { OverviewPage } from "./pages/overview.tsx";
import { TrustPage } from "./pages/trust.tsx";
import { type Route, useRoute } from "./router.ts";

type SessionState =
  | { readonly kind: "checking" }
  | { readonly kind: "anonymous"; readonly notice?: string }
  | { readonly kind: "failed"; readonly error: string }
  | { readonly kind: "in"; readonly session: Session };

const NAV: readonly { href: string; label: string; pages: readonly Route["page"][] }[] = [
  { href: "#/", label: "Overview", pages: ["overview"] },
  { href: "#/devices", label: "Devices", pages: ["devices", "device"] },
  { href: "#/denials", label: "Live denials", pages: ["denials"] },
  { href: "#/expiry", label: "Certificate expiry", pages: ["expiry"] },
  { href: "#/trust", label: "Trust", pages: ["trust"] },
];

export function App() {
  const [state, setState] = useState<SessionState>({ kind: "checking" });

  useEffect(() => {
    currentSession().then(
      (session) => setState(session ? { kind: "in", session } : { kind: "anonymous" }),
      (err: unknown) => setState({ kind: "failed", error: String(err instanceof Error ? err.message : err) }),
    );
    return onUnauthorized(() =>
      setState({ kind: "anonymous", notice: "Your session has ended. Log in again to continue." }),
    );
  }, []);

  if (state.kind === "checking") {
    return (
      <main id="main" class="center">
        <p role="status">Loading…</p>
      </main>
    );
  }
  if (state.kind === "failed") {
    return (
      <main id="main" class="center">
        <h1>Portcullis console</h1>
        <p role="alert" class="error">
          The admin API did not answer: {state.error}
        </p>
      </main>
    );
  }
  if (state.kind === "anonymous") {
    return <LoginPage notice={state.notice} onLogin={(session) => setState({ kind: "in", session })} />;
  }
  return (
    <Shell
      onLogout={async () => {
        try {
          await logout();
        } finally {
          setState({ kind: "anonymous", notice: "You have logged out." });
        }
      }}
    />
  );
}

function LoginPage({ notice, onLogin }: { notice?: string; onLogin: (s: Session) => void }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = "Log in · Portcullis console";
  }, []);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      onLogin(await login(token.trim()));
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? "That token was not accepted."
          : err instanceof ApiError && err.status === 429
            ? "Too many failed logins from this address; wait a minute and try again."
            : `Login failed: ${err instanceof Error ? err.message : String(err)}`,
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="center">
      <form class="card login" onSubmit={submit} aria-describedby="login-help">
        <h1>Portcullis console</h1>
        {notice && (
          <p role="status" class="notice">
            {notice}
          </p>
        )}
        <p id="login-help">
          Log in with the admin token (the content of <code>admin.tokenFile</code>; the demo writes it to{" "}
          <code>admin.token</code>). The console keeps a session cookie, never the token.
        </p>
        <label for="token">Admin token</label>
        <input
          id="token"
          name="token"
          type="password"
          autocomplete="current-password"
          required
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
          aria-invalid={error ? "true" : undefined}
          aria-describedby={error ? "login-error" : undefined}
        />
        {error && (
          <p id="login-error" role="alert" class="error">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Logging in…" : "Log in"}
        </button>
      </form>
    </main>
  );
}

const TITLES: Record<Route["page"], string> = {
  overview: "Overview",
  devices: "Devices",
  device: "Device",
  denials: "Live denials",
  expiry: "Certificate expiry",
  trust: "Trust",
  missing: "Not found",
};

function Shell({ onLogout }: { onLogout: () => void }) {
  const route = useRoute();
  const main = useRef<HTMLElement>(null);
  const first = useRef(true);

  useEffect(() => {
    document.title = `${route.page === "device" ? route.id : TITLES[route.page]} · Portcullis console`;
    // After a navigation, focus the page (not on the first render): screen readers read its heading.
    if (first.current) first.current = false;
    else main.current?.focus();
  }, [route]);

  return (
    <>
      <button type="button" class="skip" onClick={() => main.current?.focus()}>
        Skip to content
      </button>
      <header class="top">
        <span class="brand">Portcullis</span>
        <nav aria-label="Console">
          <ul>
            {NAV.map((item) => (
              <li key={item.href}>
                <a href={item.href} aria-current={item.pages.includes(route.page) ? "page" : undefined}>
                  {item.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <button type="button" class="logout" onClick={onLogout}>
          Log out
        </button>
      </header>
      <main id="main" ref={main} tabIndex={-1}>
        <Page route={route} />
      </main>
    </>
  );
}

function Page({ route }: { route: Route }): ComponentChildren {
  switch (route.page) {
    case "overview":
      return <OverviewPage />;
    case "devices":
      return <DevicesPage />;
    case "device":
      return <DevicePage key={route.id} id={route.id} />;
    case "denials":
      return <DenialsPage />;
    case "expiry":
      return <ExpiryPage />;
    case "trust":
      return <TrustPage />;
    case "missing":
      return (
        <>
          <h1>Not found</h1>
          <p>
            There is no page <code>{route.path}</code>. <a href="#/">Go to the overview</a>.
          </p>
        </>
      );
  }
}
