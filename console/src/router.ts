// Hash routes: #/ overview, #/devices (+ #/devices/<id>), #/denials, #/expiry, #/trust.
import { useEffect, useState } from "preact/hooks";

export type Route =
  | { readonly page: "overview" }
  | { readonly page: "devices" }
  | { readonly page: "device"; readonly id: string }
  | { readonly page: "denials" }
  | { readonly page: "expiry" }
  | { readonly page: "trust" }
  | { readonly page: "missing"; readonly path: string };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, "").replace(/\?.*$/, "") || "/";
  const parts = path.split("/").filter(Boolean);
  if (parts.length === 0) return { page: "overview" };
  const [first, second] = parts;
  if (
    parts.length === 1 &&
    (first === "devices" || first === "denials" || first === "expiry" || first === "trust")
  )
    return { page: first };
  if (parts.length === 2 && first === "devices" && second) {
    try {
      return { page: "device", id: decodeURIComponent(second) };
    } catch {
      return { page: "missing", path };
    }
  }
  return { page: "missing", path };
}

export function deviceHref(id: string): string {
  return `#/devices/${encodeURIComponent(id)}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", onChange);
    return () => removeEventListener("hashchange", onChange);
  }, []);
  return route;
}
