// CLI usage errors: one clear line on stderr and exit code 2, never a stack trace.
export class UsageError extends Error {
  override name = "UsageError";
}

export const USAGE = `Usage: portcullis <command> [options]

Commands:
  demo [--mode application|handshake] [--port 8443] [--admin-port 8444] [--dir .portcullis-demo] [--upstream URL]
        create (or reuse) a demo PKI and config, start an echo upstream and the gateway
  start --config FILE     run a gateway from a YAML config
  echo [--port N] [--host 127.0.0.1]
                          run the demo's echo upstream on its own
  pki init|issue|revoke|crl ...
                          manage a small PKI (portcullis pki --help)
  version                 the version, and the Node.js and OpenSSL it runs on
  help                    this text
`;
