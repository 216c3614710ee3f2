// CLI usage texts (the overview and one per command) and UsageError. No imports on purpose: `portcullis
// help`, `help CMD` and `CMD --help` print from here without loading any command's module.

/** CLI usage errors: one clear line on stderr and exit code 2, never a stack trace. */
export class UsageError extends Error {
  override name = "UsageError";
}

export const USAGE = `Usage: portcullis <command> [options]

Commands:
  demo [--mode application|handshake] [--port 8443] [--admin-port 8444] [--dir .portcullis-demo]
       [--upstream URL] [--echo-port N] [--mqtt-port 8883] [--mqtt-broker URL]
       [--store sqlite:PATH|postgres://…] [--workers N]
        create (or reuse) a demo PKI and config, start an echo upstream and the gateway
  start --config FILE [--workers N]
                          run a gateway from a YAML config (N processes sharing its ports)
  check --config FILE [--json]
                          validate a config as start would, without binding ports (exit 0 ok, 2 not)
  echo [--port N] [--host 127.0.0.1]
                          run the demo's echo upstream on its own
  pki init|issue|revoke|crl ...
                          manage a small PKI (portcullis pki --help)
  devices list|show|add|import|expiring|suspend|activate|revoke|rm ...
                          manage registered devices through the admin API (portcullis devices --help)
  tokens create|list|revoke ...
                          manage enrollment tokens through the admin API (portcullis tokens --help)
  certificates list|revoke ...
                          list and revoke certificates issued by enrollment (portcullis certificates --help)
  enroll --server URL (--token T | --factory-cert F --factory-key K) --id ID --out DIR
                          get a device certificate and key from an EST server (RFC 7030)
  reenroll --server URL --cert FILE --key FILE --out DIR
                          renew a device certificate with a new key over EST
  verify --ca ROOTS.pem [--untrusted F] [--crl F]... [--at TIME] [--purpose P] [--json] LEAF.pem
  verify --config FILE --host HOST --path PATH LEAF.pem
                          verify a chain offline with the gateway's engine (exit 0 ok, 1 rejected)
  version                 the version, and the Node.js and OpenSSL it runs on
  help [COMMAND]          this text, or one command's usage (also: portcullis COMMAND --help)
`;

const DEMO_USAGE = `Usage: portcullis demo [--mode application|handshake] [--port 8443] [--admin-port 8444]
                       [--dir .portcullis-demo] [--upstream URL] [--echo-port N] [--mqtt-port 8883]
                       [--mqtt-broker URL] [--store URL] [--workers N]

Creates (or reuses) a demo PKI and config in --dir, starts a built-in echo upstream and the gateway
(HTTPS, and MQTT over TLS bridged to an MQTT broker), registers the device device-001, and prints curl
and mosquitto_pub commands to try. Ctrl-C stops it. It refuses to start, before writing anything, when a
demo already runs in --dir or one of its ports is taken.

  --mode MODE        application (default): a bad certificate gets an HTTP 401 with a reason;
                     handshake: it fails the TLS handshake
  --port N           the gateway's port (default 8443; 0 for any free port)
  --admin-port N     the admin API's port (default 8444; its bearer token is in DIR/admin.token)
  --dir DIR          where the PKI, config, token and SQLite registry live (default .portcullis-demo)
  --upstream URL     route to this HTTP service instead of the built-in echo
  --echo-port N      the built-in echo upstream's port (default: the one the directory's config names,
                     else 8445, else any free port; 0 for any free port)
  --mqtt-port N      the MQTT listener's port (default: the one the directory's config names, else 8883,
                     else any free port; 0 for any free port)
  --mqtt-broker URL  the MQTT broker the MQTT listener bridges to, e.g. Mosquitto (default
                     mqtt://127.0.0.1:1883; the demo does not start one)
  --store URL        device registry: sqlite:PATH (relative to --dir; default sqlite:portcullis.db)
                     or postgres://… (several demo gateways sharing one registry)
  --workers N        N gateway processes sharing the ports (node:cluster, 1 to 64; default 1)
`;

const START_USAGE = `Usage: portcullis start --config FILE [--workers N]

Loads, validates and compiles the YAML config (docs/configuration.md), then runs the gateway until
SIGTERM or SIGINT; SIGHUP or a change of the file reloads it. Exit 2 on a bad config.

  --config, -c FILE  the YAML config
  --workers N        N gateway processes sharing the ports (node:cluster, 1 to 64; default 1)
`;

const CHECK_USAGE = `Usage: portcullis check --config FILE [--json]

Validates the YAML config as portcullis start does — the YAML, every key, the files it names
(certificates, keys, CA bundles, CRL files, the admin token), trust stores, services and routes —
without binding a port, opening the device store or fetching CRL URLs and OCSP. Like nginx -t.
Exit 0 when start would accept it (a summary is printed), 2 with each problem on its line otherwise.

  --config, -c FILE  the YAML config (also: portcullis check FILE)
  --json             {"ok":true,...} or {"ok":false,"errors":[{"path":...,"message":...}]} on stdout
`;

const ECHO_USAGE = `Usage: portcullis echo [--port N] [--host 127.0.0.1]

Runs the demo's echo upstream on its own (it answers every request with the request as JSON), for
portcullis start --config .portcullis-demo/portcullis.yaml. Ctrl-C stops it.

  --port N           the port to listen on (default 0: any free port, printed at start)
  --host ADDRESS     the address to listen on (default 127.0.0.1)
`;

// The ALG and REASON lists are spelled out rather than imported (CRL_REASONS comes from @peculiar/x509);
// src/cli/usage.test.ts checks that they match KEY_ALGORITHMS and CRL_REASONS.
export const PKI_USAGE = `Usage:
  portcullis pki init --dir DIR [--algorithm ALG] [--name "Root CA name"]
  portcullis pki issue device --dir DIR --id ID [--days N] [--out PREFIX] [--algorithm ALG] [--force]
  portcullis pki issue server --dir DIR --name HOST [--name HOST...] [--days N] [--out PREFIX] [--algorithm ALG] [--force]
  portcullis pki revoke --dir DIR (--serial HEX | --cert FILE) [--reason REASON]
  portcullis pki crl --dir DIR [--days N] [--out FILE]

init creates root.crt/.key, intermediate.crt/.key, ca-chain.crt, revoked.json, crl.pem and root-crl.pem in DIR.
issue writes PREFIX.crt (leaf + intermediate) and PREFIX.key; PREFIX defaults to DIR/<id or first name>.
revoke lists the certificate in DIR/revoked.json and regenerates DIR/crl.pem.

ALG:    ec-p256 | ec-p384 | rsa-2048 | rsa-3072 | rsa-4096 (default ec-p256)
REASON: unspecified | keyCompromise | cACompromise | affiliationChanged | superseded | cessationOfOperation | certificateHold | removeFromCRL | privilegeWithdrawn | aACompromise
`;

export const DEVICES_USAGE = `Usage:
  portcullis devices list [--status S] [--group G] [--binding KIND:VALUE] [--limit N] [--after ID] [--all]
  portcullis devices show ID
  portcullis devices add --id ID [--cert FILE] [--group G]... [--binding KIND:VALUE]... [--status S] [--metadata JSON]
  portcullis devices import FILE.ndjson
  portcullis devices expiring [--within 30d]
  portcullis devices suspend|activate|revoke ID...
  portcullis devices rm ID...

expiring lists the devices whose certificate expires within the window (default 30d; e.g. 7d, 12h), soonest
first: those seen on this gateway in the last 24 h and those holding certificates issued through enrollment.

Every command takes:
  --url URL           admin API (env PORTCULLIS_ADMIN_URL; default http://127.0.0.1:8444)
  --token TOKEN       bearer token (env PORTCULLIS_ADMIN_TOKEN), or --token-file FILE
  --cacert FILE       CA to trust for an https admin API; --client-cert FILE --client-key FILE when it asks
  --json              machine-readable output

S: active | suspended | revoked | pending. KIND: fingerprint | spki | cn | uri | dns.
`;

export const TOKENS_USAGE = `Usage:
  portcullis tokens create --device ID [--profile P] [--ttl DURATION]
  portcullis tokens list [--device ID] [--limit N] [--after TOKEN_ID] [--all]
  portcullis tokens revoke TOKEN_ID...

create makes a one-time enrollment token for device ID (for portcullis enroll --token) and prints it with
its id and expiry; the token is shown only this once. --profile names the enrollment profile (default: the
server's), --ttl how long the token stays valid (30m, 24h, 7d or milliseconds; default: the profile's).
list shows tokens and their state (active, used, expired, revoked); revoke makes a token unusable.

Every command takes:
  --url URL           admin API (env PORTCULLIS_ADMIN_URL; default http://127.0.0.1:8444)
  --token TOKEN       bearer token (env PORTCULLIS_ADMIN_TOKEN), or --token-file FILE
  --cacert FILE       CA to trust for an https admin API; --client-cert FILE --client-key FILE when it asks
  --json              machine-readable output
`;

export const CERTIFICATES_USAGE = `Usage:
  portcullis certificates list --device ID [--limit N] [--after SERIAL] [--all]
  portcullis certificates revoke SERIAL... [--reason REASON]

list shows the certificates enrollment issued to a device and their state (valid, expired, revoked);
revoke revokes one: the gateway refuses it at once, and it goes into its profile's CRL.

Every command takes:
  --url URL           admin API (env PORTCULLIS_ADMIN_URL; default http://127.0.0.1:8444)
  --token TOKEN       bearer token (env PORTCULLIS_ADMIN_TOKEN), or --token-file FILE
  --cacert FILE       CA to trust for an https admin API; --client-cert FILE --client-key FILE when it asks
  --json              machine-readable output

REASON: unspecified | keyCompromise | cACompromise | affiliationChanged | superseded | cessationOfOperation | certificateHold | removeFromCRL | privilegeWithdrawn | aACompromise (default unspecified)
`;

export const ENROLL_USAGE = `Usage:
  portcullis enroll --server URL [--label L] [--ca FILE] (--token T | --factory-cert F --factory-key K)
                    --id ID --out DIR [--key-type ALG] [--wait DURATION]

Gets a first certificate for device ID from an EST server (RFC 7030 simpleenroll): makes a new key and a
CSR (CN=ID, subjectAltName URI urn:device:ID) and, once the certificate arrives, writes DIR/ID.crt,
DIR/ID.key (PKCS#8, mode 0600) and DIR/ca.pem (the server's CA certificates). A refused or pending
enrollment writes nothing. Exit 0 enrolled, 1 refused or failed, 2 for a wrong command line, 75 pending
an operator's approval.

  --server URL         the EST server, https://HOST[:PORT] (it answers under /.well-known/est/)
  --label L            a CA label: /.well-known/est/L/
  --ca FILE            the CA certificate(s) to verify the server with (default: Node's and the OS's roots)
  --token T            a one-time enrollment token (portcullis tokens create), sent as HTTP Basic ID:T
  --factory-cert F --factory-key K
                       authenticate with a factory (bootstrap) certificate over mutual TLS instead
  --id ID              the device id
  --out DIR            where to write the files (made if missing)
  --key-type ALG       the new key's type (default ec-p256)
  --wait DURATION      while pending approval, retry when the server's Retry-After says, for up to this
                       long (30s, 10m, 1h; default 0: exit 75 at once)

ALG: ec-p256 | ec-p384 | rsa-2048 | rsa-3072 | rsa-4096
`;

export const REENROLL_USAGE = `Usage:
  portcullis reenroll --server URL [--label L] [--ca FILE] --cert FILE --key FILE --out DIR
                      [--key-type ALG] [--wait DURATION]

Renews a device certificate (RFC 7030 simplereenroll): authenticates with the current certificate and key
over mutual TLS, makes a new key, and asks for a certificate with the current one's exact subject and
subjectAltName. Once it arrives, writes DIR/ID.crt, DIR/ID.key (mode 0600) and DIR/ca.pem, ID being the
device the current certificate names (its urn:device:ID URI, else its CN); DIR may hold the current files.
Exit codes as for enroll.

  --cert FILE          the current certificate (PEM; certificates after it are sent as its chain)
  --key FILE           its private key
  --key-type ALG       the new key's type (default: the current key's)
  --server, --label, --ca, --out, --wait: as for enroll (portcullis enroll --help)

ALG: ec-p256 | ec-p384 | rsa-2048 | rsa-3072 | rsa-4096
`;

// verify.ts keeps a one-line summary of its own for its error messages; this is the full text.
const VERIFY_USAGE = `Usage:
  portcullis verify --ca ROOTS.pem [--untrusted CHAIN.pem] [--crl FILE]... [--max-depth N] [--at TIME]
                    [--purpose client|server|any] [--json] LEAF.pem
  portcullis verify --config FILE --host HOST --path PATH [--untrusted CHAIN.pem] [--at TIME] [--json] LEAF.pem

Verifies a certificate chain offline with the gateway's own engine. Exit 0 accepted, 1 rejected (with
a reason code), 2 for a wrong command line or an unreadable input.

  LEAF.pem             the device certificate (PEM or DER); PEM certificates after it count as sent by
                       the device
  --ca ROOTS.pem       trust anchors (and CA certificates) to verify against
  --untrusted FILE     more intermediates, as if the device had sent them
  --crl FILE           a CRL to check revocation against (repeatable)
  --max-depth N        the longest path accepted, in certificates (at least 2)
  --purpose P          the extendedKeyUsage required: client (default), server or any
  --at TIME            verify at this time: ISO 8601 (UTC unless an offset is given) or Unix seconds
  --config FILE --host HOST --path PATH
                       verify as the config's route for a GET of HOST and PATH does (its trust stores,
                       policy, CRL files and device registry, read-only; CRL URLs and OCSP are not
                       fetched), explaining each step
  --json               the verdict as JSON
`;

const VERSION_USAGE = `Usage: portcullis version   (also --version, -v)

Prints the version, and the Node.js and OpenSSL it runs on, e.g.
  portcullis 0.1.0 (node v24.21.0, openssl 3.5.8)
`;

const HELP_USAGE = `Usage: portcullis help [COMMAND]

Without COMMAND, lists the commands; with one, prints its usage (as portcullis COMMAND --help does).
Commands: demo, start, check, echo, pki, verify, devices, tokens, certificates, enroll, reenroll, version,
help.
`;

const COMMAND_USAGE: Readonly<Record<string, string>> = {
  demo: DEMO_USAGE,
  start: START_USAGE,
  check: CHECK_USAGE,
  echo: ECHO_USAGE,
  pki: PKI_USAGE,
  verify: VERIFY_USAGE,
  devices: DEVICES_USAGE,
  tokens: TOKENS_USAGE,
  certificates: CERTIFICATES_USAGE,
  enroll: ENROLL_USAGE,
  reenroll: REENROLL_USAGE,
  version: VERSION_USAGE,
  help: HELP_USAGE,
};

/** The command names that have a usage text, in the order of the overview. */
export const COMMAND_NAMES: readonly string[] = Object.keys(COMMAND_USAGE);

/** The usage text of one command, or undefined if there is no such command. */
export function commandUsage(command: string): string | undefined {
  return Object.hasOwn(COMMAND_USAGE, command) ? COMMAND_USAGE[command] : undefined;
}

/** True if `--help` or `-h` comes before any `--` (after it, a file may be named `-h`). */
export function wantsHelp(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === "--") return false;
    if (arg === "--help" || arg === "-h") return true;
  }
  return false;
}
