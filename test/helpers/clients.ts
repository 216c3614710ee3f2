// Real clients for end-to-end tests: curl (HTTP/1.1 and HTTP/2) and openssl s_client, run as processes.
import { execFile } from "node:child_process";
import { join } from "node:path";

export interface CurlResult {
  /** curl's exit code: 0 when an HTTP response arrived. */
  readonly exitCode: number;
  readonly status: number;
  readonly httpVersion: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly stderr: string;
  json<T = Record<string, unknown>>(): T;
}

export interface CurlOptions {
  readonly port: number;
  readonly host?: string;
  readonly path?: string;
  /** Demo directory holding ca-chain.crt and the device files. */
  readonly dir: string;
  /** Device file prefix in `dir` (e.g. "device", "wrong-device"); none sends no certificate. */
  readonly device?: string;
  readonly http?: "1.1" | "2";
  readonly args?: readonly string[];
}

const MARK = "\n--portcullis-curl--";

export function curl(options: CurlOptions): Promise<CurlResult> {
  const host = options.host ?? "mtls.auth.local.com";
  const args = [
    "-sS",
    "-m",
    "20",
    "-D",
    "-",
    "--resolve",
    `${host}:${options.port}:127.0.0.1`,
    "--cacert",
    join(options.dir, "ca-chain.crt"),
    options.http === "1.1" ? "--http1.1" : "--http2",
    "-w",
    `${MARK}%{http_version} %{http_code}`,
  ];
  if (options.device) {
    args.push(
      "--key",
      join(options.dir, `${options.device}.key`),
      "--cert",
      join(options.dir, `${options.device}.crt`),
    );
  }
  args.push(...(options.args ?? []), `https://${host}:${options.port}${options.path ?? "/echo"}`);
  return new Promise((resolve) => {
    execFile("curl", args, { maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const exitCode = err ? Number((err as NodeJS.ErrnoException & { code?: number }).code ?? 1) : 0;
      const markAt = stdout.lastIndexOf(MARK);
      const tail = markAt >= 0 ? stdout.slice(markAt + MARK.length) : "";
      const [httpVersion = "", code = "0"] = tail.trim().split(" ");
      const response = markAt >= 0 ? stdout.slice(0, markAt) : stdout;
      const split = response.indexOf("\r\n\r\n");
      const head = split >= 0 ? response.slice(0, split) : "";
      const body = split >= 0 ? response.slice(split + 4) : response;
      const headers: Record<string, string> = {};
      for (const line of head.split("\r\n").slice(1)) {
        const colon = line.indexOf(":");
        if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({
        exitCode,
        status: Number(code),
        httpVersion,
        headers,
        body,
        stderr,
        json: <T>() => JSON.parse(body) as T,
      });
    });
  });
}

/** Runs `openssl s_client` with the given arguments and stdin; resolves with its combined output. */
export function sClient(
  args: readonly string[],
  input = "",
  timeoutMs = 15_000,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      "openssl",
      ["s_client", ...args],
      { timeout: timeoutMs },
      (err, stdout, stderr) => {
        const code = err ? Number((err as NodeJS.ErrnoException & { code?: number }).code ?? 1) : 0;
        resolve({ code: Number.isNaN(code) ? 1 : code, output: `${stdout}${stderr}` });
      },
    );
    // openssl may exit (e.g. on a refused handshake) before reading its input: that is not an error here.
    child.stdin?.on("error", () => {});
    child.stdin?.end(input);
  });
}
