// `portcullis verify`: verifies a certificate chain offline with the engine the gateway uses (evaluate()),
// at a chosen time, against CA files (`--ca`) or a route of a config file (`--config`, explained step by
// step). Exit 0 accepted, 1 rejected, 2 usage or input error (thrown as UsageError: one line on stderr).
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";
import { loadConfig } from "../config/load.ts";
import {
  type Certificate,
  CertificateParseError,
  chainFingerprint,
  parseCertificate,
} from "../identity/certificate.ts";
import { evaluateDetailed } from "../identity/evaluate.ts";
import {
  attemptLines,
  attemptStores,
  decidedBy,
  decisionPath,
  decisionSentence,
  pathLines,
} from "../identity/explain.ts";
import { PemError, readPemCertificates } from "../identity/pem.ts";
import { checkRevocation } from "../identity/revocation/check.ts";
import { CrlParseError, parseCrls } from "../identity/revocation/crl.ts";
import { CrlSnapshot } from "../identity/revocation/crl-snapshot.ts";
import { RevocationState } from "../identity/revocation/revocation-state.ts";
import { REVOCATION_OFF, type RevocationSettings } from "../identity/revocation/types.ts";
import { compileTrustStore, TrustStoreError } from "../identity/trust-store.ts";
import type { AuthPolicy, ConnectionIdentity, Decision, Purpose, TrustStore } from "../identity/types.ts";
import { normalizeName } from "../routing/names.ts";
import { normalizeRequestPath } from "../routing/request-path.ts";
import { UsageError } from "./usage.ts";

const VERIFY_USAGE =
  "verify --ca ROOTS.pem [--untrusted CHAIN.pem] [--crl FILE]... [--max-depth N] [--at TIME] " +
  "[--purpose client|server|any] [--json] LEAF.pem, or verify --config FILE --host HOST --path PATH LEAF.pem";
const PURPOSES: readonly Purpose[] = ["client", "server", "any"];

/** ISO 8601 (UTC when no offset is given) or Unix seconds. */
export function parseTime(text: string): Date {
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(text)) ms = Number(text) * 1000;
  else if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i.test(text)) {
    const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(text) || !text.includes(":") ? text : `${text}Z`;
    ms = Date.parse(zoned.replace(" ", "T"));
  } else ms = Number.NaN;
  if (!Number.isFinite(ms))
    throw new UsageError(`verify: --at "${text}" is neither ISO 8601 nor Unix seconds`);
  return new Date(ms);
}

function readInput(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new UsageError(`verify: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

/** Every certificate of a PEM bundle, or of one DER certificate; any damage is an input error. */
function readCertificates(file: string): Certificate[] {
  const bytes = readInput(file);
  const text = bytes.toString("latin1");
  try {
    const certs = text.includes("-----BEGIN") ? readPemCertificates(text) : [parseCertificate(bytes)];
    if (certs.length === 0) throw new UsageError(`verify: ${file} holds no certificate`);
    return certs;
  } catch (err) {
    if (err instanceof PemError || err instanceof CertificateParseError) {
      throw new UsageError(`verify: ${file}: ${err.message}`);
    }
    throw err;
  }
}

interface Output {
  readonly json: boolean;
  readonly lines: string[];
  /** Print the accepted path after the verdict (the --config form has shown it per trust store). */
  readonly finalPath?: boolean;
}

function finish(out: Output, decision: Decision, trustStore: string | undefined, extra: object): number {
  if (out.json) {
    const body = {
      accepted: decision.allow,
      ...(decision.allow ? {} : { reason: decision.reason }),
      detail: decisionSentence(decision),
      path: decisionPath(decision),
      trustStore: decision.allow ? decision.identity.trustStore : trustStore,
      ...(decision.allow && decision.graceUsedMs !== undefined ? { graceUsedMs: decision.graceUsedMs } : {}),
      ...extra,
    };
    process.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
  } else {
    const head = decision.allow ? "accepted" : `rejected: ${decision.reason}`;
    const lines = [...out.lines, head, `  ${decisionSentence(decision)}`];
    if (decision.allow && out.finalPath !== false) lines.push(...pathLines(decisionPath(decision)));
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  return decision.allow ? 0 : 1;
}

/** CRL files as the RevocationView the engine reads. */
function loadCrls(files: readonly string[]): RevocationState {
  let snapshot = CrlSnapshot.EMPTY;
  for (const file of files) {
    try {
      snapshot = snapshot.with(file, parseCrls(readInput(file), file));
    } catch (err) {
      if (err instanceof CrlParseError) throw new UsageError(`verify: ${err.message}`);
      throw err;
    }
  }
  const state = new RevocationState();
  state.swapCrls(snapshot);
  return state;
}

/**
 * `--crl` beyond the trust store's own rule (strict, leaf, as OpenSSL's -crl_check): a CA of the path
 * that a loaded CRL lists as revoked is refused too; a CA without a loaded CRL is not an error.
 */
function revokedCa(decision: Decision, store: TrustStore, view: RevocationState, now: Date): Decision {
  if (!decision.allow || store.revocation.mode === "off") return decision;
  const chain: TrustStore = { ...store, revocation: { ...store.revocation, mode: "soft", scope: "chain" } };
  const result = checkRevocation(decision.identity.leaf, decision.identity.path, chain, view, now);
  return result.ok ? decision : { allow: false, reason: result.reason, detail: result.detail };
}

function identityOf(leaf: Certificate, presented: Certificate[]): ConnectionIdentity {
  return {
    leaf,
    presented,
    chainFingerprint: chainFingerprint([leaf, ...presented]),
    sni: undefined,
    listener: "portcullis verify",
    resumed: false,
  };
}

function runWithCa(
  values: Record<string, string | boolean | string[] | undefined>,
  leafFile: string,
): number {
  const caFile = String(values.ca);
  const maxDepth = values["max-depth"] === undefined ? undefined : Number(values["max-depth"]);
  if (maxDepth !== undefined && (!Number.isInteger(maxDepth) || maxDepth < 2)) {
    throw new UsageError(
      `verify: --max-depth must be an integer of at least 2, got "${values["max-depth"]}"`,
    );
  }
  const purpose = (values.purpose ?? "client") as Purpose;
  if (!PURPOSES.includes(purpose)) throw new UsageError(`verify: --purpose must be client, server or any`);
  const crlFiles = (values.crl as string[] | undefined) ?? [];
  const revocation: RevocationSettings =
    crlFiles.length > 0 ? { ...REVOCATION_OFF, mode: "strict", scope: "leaf" } : REVOCATION_OFF;
  let store: TrustStore;
  try {
    store = compileTrustStore(basename(caFile), readInput(caFile).toString("utf8"), {
      maxDepth,
      purpose,
      revocation,
    });
  } catch (err) {
    if (err instanceof TrustStoreError) throw new UsageError(`verify: --ca ${caFile}: ${err.message}`);
    throw err;
  }
  const view = loadCrls(crlFiles);
  const [leaf, ...extras] = readCertificates(leafFile);
  if (!leaf) throw new UsageError(`verify: ${leafFile} holds no certificate`);
  const untrusted = values.untrusted ? readCertificates(String(values.untrusted)) : [];
  const at = values.at === undefined ? new Date() : parseTime(String(values.at));
  const policy: AuthPolicy = { id: "portcullis-verify", trustStores: [store] };
  const { decision: verdict } = evaluateDetailed(
    identityOf(leaf, [...extras, ...untrusted]),
    policy,
    [store],
    at,
    { revocation: view },
  );
  const decision = revokedCa(verdict, store, view, at);
  const out: Output = { json: values.json === true, lines: [`verifying at ${at.toISOString()}`] };
  return finish(out, decision, store.name, { at: at.toISOString() });
}

async function runWithConfig(
  values: Record<string, string | boolean | string[] | undefined>,
  leafFile: string,
): Promise<number> {
  if (typeof values.host !== "string" || typeof values.path !== "string") {
    throw new UsageError("verify: --config needs --host HOST and --path PATH");
  }
  const host = normalizeName(values.host);
  if (!host) throw new UsageError(`verify: --host "${values.host}" is not a valid host name`);
  const target = normalizeRequestPath(values.path);
  if (!target) throw new UsageError(`verify: --path "${values.path}" is not a valid request path`);
  const config = await loadConfig(String(values.config));
  const [leaf, ...extras] = readCertificates(leafFile);
  if (!leaf) throw new UsageError(`verify: ${leafFile} holds no certificate`);
  const untrusted = values.untrusted ? readCertificates(String(values.untrusted)) : [];
  const at = values.at === undefined ? new Date() : parseTime(String(values.at));
  const out: Output = { json: values.json === true, lines: [`verifying at ${at.toISOString()}`] };
  const match = config.routes.find(host, "GET", target.path);
  if (!match) {
    const detail = `no route matches GET ${host}${target.path}: the gateway answers 404`;
    if (out.json)
      process.stdout.write(`${JSON.stringify({ accepted: false, detail, path: [], route: null })}\n`);
    else process.stdout.write(`${[...out.lines, "rejected: no route", `  ${detail}`].join("\n")}\n`);
    return 1;
  }
  const { route } = match;
  out.lines.push(`route "${route.name}" matched ${host}${target.path} (service "${route.service}")`);
  if (!route.policy) {
    out.lines.push("route is public: no certificate is required");
    if (out.json)
      process.stdout.write(`${JSON.stringify({ accepted: true, route: route.name, public: true })}\n`);
    else process.stdout.write(`${[...out.lines, "accepted"].join("\n")}\n`);
    return 0;
  }
  const policy = route.policy;
  const presented = [...extras, ...untrusted];
  const attempts = attemptStores(leaf, presented, policy.trustStores, at);
  out.lines.push(
    `auth policy "${policy.id}": trust stores ${policy.trustStores.map((s) => `"${s.name}"`).join(", ") || "(none)"}` +
      `, enforce ${policy.enforce ?? "enforce"}, registry ${policy.registry ?? "off"}${policy.match ? ", certificate matchers" : ""}`,
    ...attemptLines(attempts),
  );
  // Revocation data offline: the CRL files the config names (URLs and OCSP are the running gateway's).
  const crlFiles = [
    ...new Set(
      policy.trustStores.flatMap((s) => (s.revocation.mode === "off" ? [] : s.revocation.crl.files)),
    ),
  ];
  const revocation = crlFiles.length > 0 ? loadCrls(crlFiles) : undefined;
  const { decision, softFailures } = evaluateDetailed(
    identityOf(leaf, presented),
    policy,
    config.trustStores,
    at,
    { revocation, limits: config.chainLimits },
  );
  if (crlFiles.length > 0)
    out.lines.push(
      `revocation: CRL files ${crlFiles.join(", ")} (CRL URLs and OCSP are not fetched offline)`,
    );
  for (const soft of softFailures)
    out.lines.push(`revocation (soft) in trust store "${soft.store}": ${soft.detail}`);
  out.lines.push(`decided by: ${decidedBy(decision, attempts)}`);
  if (policy.registry === "required" || policy.registry === "optional") {
    out.lines.push(`note: the registry (${policy.registry}) is not consulted offline`);
  }
  if (!decision.allow && policy.enforce === "report-only") {
    out.lines.push("note: report-only route: the gateway logs this denial and lets the request pass");
  }
  return finish({ ...out, finalPath: false }, decision, attempts[0]?.store, {
    route: route.name,
    policy: policy.id,
    registry: policy.registry ?? "off",
    stores: attempts,
  });
}

export async function runVerify(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ca: { type: "string" },
      untrusted: { type: "string" },
      crl: { type: "string", multiple: true },
      "max-depth": { type: "string" },
      at: { type: "string" },
      purpose: { type: "string" },
      json: { type: "boolean" },
      config: { type: "string" },
      host: { type: "string" },
      path: { type: "string" },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length !== 1) {
    throw new UsageError(`verify: exactly one LEAF.pem is needed (usage: portcullis ${VERIFY_USAGE})`);
  }
  const leafFile = positionals[0] as string;
  if (values.config !== undefined) {
    if (
      values.ca !== undefined ||
      values.crl !== undefined ||
      values["max-depth"] !== undefined ||
      values.purpose !== undefined
    ) {
      throw new UsageError(
        "verify: --config takes the trust stores from the config: drop --ca, --crl, --max-depth and --purpose",
      );
    }
    return runWithConfig(values, leafFile);
  }
  if (values.ca === undefined) {
    throw new UsageError(
      `verify: --ca ROOTS.pem or --config FILE is required (usage: portcullis ${VERIFY_USAGE})`,
    );
  }
  if (values.host !== undefined || values.path !== undefined)
    throw new UsageError("verify: --host and --path go with --config");
  return runWithCa(values, leafFile);
}
