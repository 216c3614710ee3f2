// `portcullis pki …`: manages a small on-disk PKI (root + intermediate CA, device and server leaves, CRL).
import { parseArgs } from "node:util";
import { PkiError } from "../pki/errors.ts";
import { crlReasonCode } from "../pki/issue.ts";
import { isKeyAlgorithm, KEY_ALGORITHMS, type KeyAlgorithm } from "../pki/keys.ts";
import { deviceIdProblem, serverNameProblem } from "../pki/names.ts";
import { initPki, issueToFiles, loadPki, revoke, writeCrl } from "../pki/store.ts";
import { PKI_USAGE } from "./usage.ts";

export interface PkiIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: PkiIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

type OptionSpec = { type: "string" | "boolean"; multiple?: boolean };

/** Strict parse of one subcommand's options; --help is accepted everywhere. */
function parse(args: string[], options: Record<string, OptionSpec>) {
  const { values, positionals } = parseArgs({
    args,
    options: { ...options, help: { type: "boolean", short: "h" } },
    strict: true,
    allowPositionals: true,
  });
  return { values: values as Record<string, string | string[] | boolean | undefined>, positionals };
}

function str(values: Record<string, unknown>, name: string): string | undefined {
  const value = values[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value === "") throw new PkiError(`--${name} needs a value`);
  return value;
}

function required(values: Record<string, unknown>, name: string): string {
  const value = str(values, name);
  if (value === undefined) throw new PkiError(`--${name} is required`);
  return value;
}

function days(values: Record<string, unknown>): number | undefined {
  const value = str(values, "days");
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 36500) {
    throw new PkiError(`--days must be a whole number of days from 1 to 36500, got "${value}"`);
  }
  return Number(value);
}

function algorithm(values: Record<string, unknown>): KeyAlgorithm | undefined {
  const value = str(values, "algorithm");
  if (value === undefined) return undefined;
  if (!isKeyAlgorithm(value)) throw new PkiError(`--algorithm must be one of ${KEY_ALGORITHMS.join(", ")}`);
  return value;
}

function noPositionals(positionals: string[]): void {
  if (positionals.length > 0) throw new PkiError(`unexpected argument "${positionals[0]}"`);
}

const ISSUE_OPTIONS: Record<string, OptionSpec> = {
  dir: { type: "string" },
  days: { type: "string" },
  out: { type: "string" },
  algorithm: { type: "string" },
  force: { type: "boolean" },
};

async function run(argv: string[], io: PkiIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined)
    throw new PkiError("a subcommand is required: init, issue, revoke or crl (see --help)");
  if (
    command === "--help" ||
    command === "-h" ||
    command === "help" ||
    rest.includes("--help") ||
    rest.includes("-h")
  ) {
    io.stdout(PKI_USAGE);
    return 0;
  }
  switch (command) {
    case "init": {
      const { values, positionals } = parse(rest, {
        dir: { type: "string" },
        algorithm: { type: "string" },
        name: { type: "string" },
      });
      noPositionals(positionals);
      const pki = await initPki(required(values, "dir"), {
        algorithm: algorithm(values),
        name: str(values, "name"),
      });
      io.stdout(`initialised PKI in ${pki.dir} (root "${pki.root.cert.subject}", ${pki.root.algorithm})\n`);
      return 0;
    }
    case "issue": {
      const [kind, ...issueArgs] = rest;
      if (kind !== "device" && kind !== "server") {
        throw new PkiError(
          `issue needs "device" or "server", got ${kind === undefined ? "nothing" : `"${kind}"`}`,
        );
      }
      const extra: Record<string, OptionSpec> =
        kind === "device" ? { id: { type: "string" } } : { name: { type: "string", multiple: true } };
      const { values, positionals } = parse(issueArgs, { ...ISSUE_OPTIONS, ...extra });
      noPositionals(positionals);
      const dir = required(values, "dir");
      const opts = {
        days: days(values),
        out: str(values, "out"),
        algorithm: algorithm(values),
        force: values.force === true,
      };
      let request: Parameters<typeof issueToFiles>[1];
      // Checked before the PKI is read, a key made or a file written.
      if (kind === "device") {
        const deviceId = required(values, "id");
        const problem = deviceIdProblem(deviceId);
        if (problem) throw new PkiError(`--id: ${problem}`);
        request = { kind, deviceId };
      } else {
        const names = (values.name as string[] | undefined) ?? [];
        if (names.length === 0 || names.some((n) => n === "")) throw new PkiError("--name is required");
        for (const name of names) {
          const problem = serverNameProblem(name);
          if (problem) throw new PkiError(`--name ${problem}`);
        }
        request = { kind, names };
      }
      const result = await issueToFiles(await loadPki(dir), request, opts);
      io.stdout(
        `issued ${kind} certificate ${result.certPath} and key ${result.keyPath}\n` +
          `  serial ${result.serialNumber}, valid until ${result.issued.cert.notAfter.toISOString()}\n`,
      );
      return 0;
    }
    case "revoke": {
      const { values, positionals } = parse(rest, {
        dir: { type: "string" },
        serial: { type: "string" },
        cert: { type: "string" },
        reason: { type: "string" },
      });
      noPositionals(positionals);
      const dir = required(values, "dir");
      const serial = str(values, "serial");
      const certFile = str(values, "cert");
      if ((serial === undefined) === (certFile === undefined))
        throw new PkiError("give exactly one of --serial or --cert");
      const reason = str(values, "reason") ?? "unspecified";
      crlReasonCode(reason);
      const target = serial !== undefined ? { serial } : { certFile: certFile ?? "" };
      const result = await revoke(dir, target, reason);
      io.stdout(
        `${result.alreadyRevoked ? "already revoked" : "revoked"} serial ${result.serialNumber}; CRL written to ${result.crlPath}\n`,
      );
      return 0;
    }
    case "crl": {
      const { values, positionals } = parse(rest, {
        dir: { type: "string" },
        days: { type: "string" },
        out: { type: "string" },
      });
      noPositionals(positionals);
      const result = await writeCrl(required(values, "dir"), { days: days(values), out: str(values, "out") });
      const next = result.crl.nextUpdate?.toISOString() ?? "never";
      io.stdout(
        `CRL with ${result.crl.entries.length} revoked certificate(s) written to ${result.path}, next update ${next}\n`,
      );
      return 0;
    }
    default:
      throw new PkiError(`unknown subcommand "${command}" (use init, issue, revoke or crl)`);
  }
}

/** True for errors caused by the user's input or files: printed as one line, exit code 2. */
function isInputError(err: unknown): err is Error {
  if (err instanceof PkiError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  // parseArgs errors (ERR_PARSE_ARGS_*) and file system errors (ENOENT, EACCES, …).
  return typeof code === "string" && (code.startsWith("ERR_PARSE_ARGS_") || /^E[A-Z]+$/.test(code));
}

/** Runs `portcullis pki <argv>`; resolves to the exit code. Unexpected errors (bugs) are rethrown. */
export async function runPki(argv: string[], io: PkiIo = processIo): Promise<number> {
  try {
    return await run(argv, io);
  } catch (err) {
    if (!isInputError(err)) throw err;
    io.stderr(`portcullis pki: ${err.message.split("\n")[0]}\n`);
    return 2;
  }
}
