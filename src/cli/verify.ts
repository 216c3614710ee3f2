// `portcullis verify`: verifies a certificate chain offline with the engine the gateway uses (evaluate()),
// at a chosen time, against CA files (`--ca`) or a route of a config file (`--config`, explained step by
// step). Exit 0 accepted; 1 rejected, for every certificate problem (in the leaf, the chain or the CA
// file: a block that does not parse is a `bad_certificate` verdict); 2 for a wrong command line, a file
// that cannot be read, or one that holds no certificate at all (thrown as UsageError: one line on stderr).
// The config loader and the CRL modules are imported only by the forms that use them, so that
// `verify --ca` starts fast.
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";
import { type Certificate, CertificateParseError, parseCertificate } from "../identity/certificate.ts";
import { offlineIdentity } from "../identity/decide.ts";
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
import type { ReasonCode } from "../identity/reasons.ts";
import { checkRevocation } from "../identity/revocation/check.ts";
import type { RevocationView } from "../identity/revocation/types.ts";
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

/** A certificate of the input is at fault: reported as a rejection (exit 1), not as a usage error. */
class CertificateRejected extends Error {
  override name = "CertificateRejected";
  readonly reason: ReasonCode;

  constructor(reason: ReasonCode, detail: string) {
    super(detail);
    this.reason = reason;
  }
}

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

/** DER starts with a SEQUENCE tag: a file that does not is no certificate at all (a usage error). */
const looksLikeDer = (bytes: Buffer): boolean => bytes[0] === 0x30;

/**
 * Every certificate of a PEM bundle, or of one DER certificate. A file without any certificate block is a
 * usage error; a damaged certificate is a rejection (CertificateRejected: bad_certificate).
 */
function readCertificates(file: string): Certificate[] {
  const bytes = readInput(file);
  const text = bytes.toString("latin1");
  if (!text.includes("-----BEGIN") && !looksLikeDer(bytes)) {
    throw new UsageError(`verify: ${file} holds no PEM block and is not a DER certificate`);
  }
  try {
    const certs = text.includes("-----BEGIN") ? readPemCertificates(text) : [parseCertificate(bytes)];
    if (certs.length === 0) throw new UsageError(`verify: ${file} holds no certificate`);
    return certs;
  } catch (err) {
    if (err instanceof PemError && !err.certificateProblem)
      throw new UsageError(`verify: ${file}: ${err.message}`);
    if (err instanceof PemError || err instanceof CertificateParseError) {
      throw new CertificateRejected("bad_certificate", `${file}: ${err.message}`);
    }
    throw err;
  }
}

interface Output {
  readonly json: boolean;
  /** The time the chain is verified at (--at, else now). */
  readonly at: Date;
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

/** CRL files as the RevocationView the engine reads (the CRL modules load only when there are some). */
async function loadCrls(files: readonly string[]): Promise<RevocationView> {
  const [{ CrlParseError, parseCrls }, { CrlSnapshot }, { RevocationState }] = await Promise.all([
    import("../identity/revocation/crl.ts"),
    import("../identity/revocation/crl-snapshot.ts"),
    import("../identity/revocation/revocation-state.ts"),
  ]);
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
function revokedCa(decision: Decision, store: TrustStore, view: RevocationView, now: Date): Decision {
  if (!decision.allow || store.revocation.mode === "off") return decision;
  const chain: TrustStore = { ...store, revocation: { ...store.revocation, mode: "soft", scope: "chain" } };
  const result = checkRevocation(decision.identity.leaf, decision.identity.path, chain, view, now);
  return result.ok ? decision : { allow: false, reason: result.reason, detail: result.detail };
}

const identityOf = (leaf: Certificate, presented: Certificate[]): ConnectionIdentity =>
  offlineIdentity(leaf, presented, "portcullis verify");

async function runWithCa(
  values: Record<string, string | boolean | string[] | undefined>,
  leafFile: string,
  out: Output,
): Promise<number> {
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
  const caText = readInput(caFile).toString("utf8");
  const view = crlFiles.length > 0 ? await loadCrls(crlFiles) : undefined;
  const [leaf, ...extras] = readCertificates(leafFile);
  if (!leaf) throw new UsageError(`verify: ${leafFile} holds no certificate`);
  const untrusted = values.untrusted ? readCertificates(String(values.untrusted)) : [];
  let store: TrustStore;
  try {
    store = compileTrustStore(basename(caFile), caText, { maxDepth, purpose, revocation });
  } catch (err) {
    if (!(err instanceof TrustStoreError)) throw err;
    if (err.reason === undefined) throw new UsageError(`verify: --ca ${caFile}: ${err.message}`);
    throw new CertificateRejected(err.reason, `--ca ${caFile}: ${err.message}`);
  }
  const policy: AuthPolicy = { id: "portcullis-verify", trustStores: [store] };
  const { decision: verdict } = evaluateDetailed(
    identityOf(leaf, [...extras, ...untrusted]),
    policy,
    [store],
    out.at,
    { revocation: view },
  );
  const decision = view ? revokedCa(verdict, store, view, out.at) : verdict;
  return finish(out, decision, store.name, { at: out.at.toISOString() });
}

async function runWithConfig(
  values: Record<string, string | boolean | string[] | undefined>,
  leafFile: string,
  out: Output,
): Promise<number> {
  if (typeof values.host !== "string" || typeof values.path !== "string") {
    throw new UsageError("verify: --config needs --host HOST and --path PATH");
  }
  const host = normalizeName(values.host);
  if (!host) throw new UsageError(`verify: --host "${values.host}" is not a valid host name`);
  const target = normalizeRequestPath(values.path);
  if (!target) throw new UsageError(`verify: --path "${values.path}" is not a valid request path`);
  const { loadConfig } = await import("../config/load.ts");
  const config = await loadConfig(String(values.config));
  const [leaf, ...extras] = readCertificates(leafFile);
  if (!leaf) throw new UsageError(`verify: ${leafFile} holds no certificate`);
  const untrusted = values.untrusted ? readCertificates(String(values.untrusted)) : [];
  const at = out.at;
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
  const attempts = attemptStores(leaf, presented, policy.trustStores, at, config.chainLimits);
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
  const revocation = crlFiles.length > 0 ? await loadCrls(crlFiles) : undefined;
  const evaluated = evaluateDetailed(identityOf(leaf, presented), policy, config.trustStores, at, {
    revocation,
    limits: config.chainLimits,
  });
  const { softFailures } = evaluated;
  let decision: Decision = evaluated.decision;
  if (crlFiles.length > 0)
    out.lines.push(
      `revocation: CRL files ${crlFiles.join(", ")} (CRL URLs and OCSP are not fetched offline)`,
    );
  for (const soft of softFailures)
    out.lines.push(`revocation (soft) in trust store "${soft.store}": ${soft.detail}`);
  out.lines.push(`decided by: ${decidedBy(decision, attempts)}`);
  // The registry (read-only), as the gateway consults it: only for a chain the engine accepted.
  let registry: { consulted: boolean; deviceId?: string } | undefined;
  if (decision.allow && (policy.registry === "required" || policy.registry === "optional")) {
    const { consultRegistry } = await import("./verify-registry.ts");
    const verdict = await consultRegistry(config, decision.identity, policy);
    out.lines.push(verdict.line);
    registry = { consulted: verdict.consulted, ...(verdict.deviceId ? { deviceId: verdict.deviceId } : {}) };
    if (verdict.deny) decision = { allow: false, reason: verdict.deny.reason, detail: verdict.deny.detail };
  }
  if (!decision.allow && policy.enforce === "report-only") {
    out.lines.push("note: report-only route: the gateway logs this denial and lets the request pass");
  }
  return finish({ ...out, finalPath: false }, decision, attempts[0]?.store, {
    route: route.name,
    policy: policy.id,
    registry: policy.registry ?? "off",
    ...(registry ? { registryConsulted: registry.consulted } : {}),
    ...(registry?.deviceId ? { deviceId: registry.deviceId } : {}),
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
  } else {
    if (values.ca === undefined) {
      throw new UsageError(
        `verify: --ca ROOTS.pem or --config FILE is required (usage: portcullis ${VERIFY_USAGE})`,
      );
    }
    if (values.host !== undefined || values.path !== undefined)
      throw new UsageError("verify: --host and --path go with --config");
  }
  const at = values.at === undefined ? new Date() : parseTime(String(values.at));
  const out: Output = { json: values.json === true, at, lines: [`verifying at ${at.toISOString()}`] };
  try {
    return values.config !== undefined
      ? await runWithConfig(values, leafFile, out)
      : await runWithCa(values, leafFile, out);
  } catch (err) {
    if (!(err instanceof CertificateRejected)) throw err;
    const decision: Decision = { allow: false, reason: err.reason, detail: err.message };
    return finish({ ...out, finalPath: false }, decision, undefined, { at: at.toISOString() });
  }
}
