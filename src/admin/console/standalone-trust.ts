// GET /trust for an admin listener that serves no traffic (the --workers primary): the trust stores of the
// config it started with, and CRLs it loads itself (configured files and URLs, on the first request; the
// workers log any problem with them). CRLs of Distribution Points and OCSP answers are fetched by the
// workers as requests need them, so this view does not show them; a reload reaches the workers, not it.
import type { TrustStore } from "../../identity/types.ts";
import { RevocationService } from "../../revocation/revocation-service.ts";
import type { TrustSource } from "./trust.ts";

const quiet = { info() {}, warn() {}, error() {} };

export function standaloneTrust(trustStores: readonly TrustStore[]): {
  source(): Promise<TrustSource>;
  close(): Promise<void>;
} {
  let opening: Promise<RevocationService | undefined> | undefined;
  let error: string | undefined;
  const open = async () => {
    if (!trustStores.some((s) => s.revocation.mode !== "off")) return undefined;
    try {
      return await RevocationService.create(trustStores, { logger: quiet });
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
      return undefined;
    }
  };
  return {
    async source() {
      opening ??= open();
      const revocation = await opening;
      return { trustStores, revocation, ...(error === undefined ? {} : { revocationError: error }) };
    },
    async close() {
      await (await opening)?.close();
    },
  };
}
