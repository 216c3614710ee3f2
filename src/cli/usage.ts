// CLI usage errors: one clear line on stderr and exit code 2, never a stack trace.
export class UsageError extends Error {
  override name = "UsageError";
}

export const USAGE = `Usage: portcullis <command> [options]

Commands:
  demo [--mode application|handshake] [--port 8443] [--admin-port 8444] [--dir .portcullis-demo]
       [--upstream URL] [--store sqlite:PATH|postgres://…] [--workers N]
        create (or reuse) a demo PKI and config, start an echo upstream and the gateway
  start --config FILE [--workers N]
                          run a gateway from a YAML config (N processes sharing its ports)
  echo [--port N] [--host 127.0.0.1]
                          run the demo's echo upstream on its own
  pki init|issue|revoke|crl ...
                          manage a small PKI (portcullis pki --help)
  devices list|show|add|import|suspend|activate|revoke|rm ...
                          manage registered devices through the admin API (portcullis devices --help)
  verify --ca ROOTS.pem [--untrusted F] [--crl F]... [--at TIME] [--purpose P] [--json] LEAF.pem
  verify --config FILE --host HOST --path PATH LEAF.pem
                          verify a chain offline with the gateway's engine (exit 0 ok, 1 rejected)
  version                 the version, and the Node.js and OpenSSL it runs on
  help                    this text
`;
