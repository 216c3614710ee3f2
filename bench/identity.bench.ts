// Identity engine benchmark: verifications per second of a root → intermediate → leaf ECDSA P-256 chain,
// uncached (parse + path validation + decide) and cached (DecisionCache hit + recheckValidity), against a
// reference measured in the same run: node:crypto (OpenSSL) parsing both certificates and verifying both
// signatures, the floor of any verifier built on it. Aims (issue 3): cached < 5 µs, uncached < 1 ms.

import { X509Certificate } from "node:crypto";
import { availableParallelism } from "node:os";
import { type Certificate, parseCertificate, parseCertificateCached } from "../src/identity/certificate.ts";
import { decide, offlineIdentity, recheckValidity } from "../src/identity/decide.ts";
import { DecisionCache, decisionCacheKey } from "../src/identity/decision-cache.ts";
import { mintCa, mintDevice } from "../src/identity/testing/mint.ts";
import { compileTrustStore } from "../src/identity/trust-store.ts";
import type { AuthPolicy, ConnectionIdentity, Decision } from "../src/identity/types.ts";

const ROUNDS = 7;
const ROUND_MS = 250;
const AIM_CACHED_US = 5;
const AIM_UNCACHED_US = 1000;

let sink = 0;

/** Median µs per operation over ROUNDS timed rounds, after one warm-up round. */
function measure(op: () => unknown): number {
  const samples: number[] = [];
  for (let round = -1; round < ROUNDS; round++) {
    let ops = 0;
    let batch = 1;
    const start = performance.now();
    let elapsed = 0;
    while (elapsed < ROUND_MS) {
      for (let i = 0; i < batch; i++) if (op()) sink++;
      ops += batch;
      elapsed = performance.now() - start;
      if (elapsed < ROUND_MS / 20) batch *= 2;
    }
    if (round >= 0) samples.push((elapsed * 1000) / ops);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] ?? Number.NaN;
}

const identityOf = (leaf: Certificate, presented: Certificate[]): ConnectionIdentity =>
  offlineIdentity(leaf, presented, "bench");

const expectAllow = (decision: Decision): boolean => {
  if (!decision.allow) throw new Error(`benchmark chain denied: ${decision.reason}: ${decision.detail}`);
  return true;
};

// ---- the chain ----
const root = await mintCa("O=Bench, CN=Bench Root CA");
const int = await mintCa("O=Bench, CN=Bench Device CA", root, { pathLength: 0 });
const leaf = await mintDevice("bench-device-0001", int);
const store = compileTrustStore("bench", root.pem);
const policy: AuthPolicy = { id: "route:bench", trustStores: [store] };
const leafDer = leaf.cert.der;
const intDer = int.cert.der;
const rootKey = store.anchors[0]?.node.publicKey;
if (!rootKey) throw new Error("no anchor");
const now = new Date();

// ---- the runs ----
const reference = measure(() => {
  const l = new X509Certificate(leafDer);
  const i = new X509Certificate(intDer);
  return l.verify(i.publicKey) && i.verify(rootKey);
});

const parseOnly = measure(() => parseCertificate(leafDer));

const uncached = measure(() => {
  const l = parseCertificate(leafDer);
  const i = parseCertificate(intDer);
  return expectAllow(decide(identityOf(l, [i]), policy, [store], now));
});

// What a new device costs the gateway: its leaf is new, its intermediate comes from the parse cache
// (with the intermediate → root signature already known).
const newLeaf = measure(() => {
  const l = parseCertificate(leafDer);
  const i = parseCertificateCached(intDer);
  return expectAllow(decide(identityOf(l, [i]), policy, [store], now));
});

const cache = new DecisionCache({ maxEntries: 50_000, ttlMs: 60_000 });
const identity = identityOf(leaf.cert, [int.cert]);
cache.set(decisionCacheKey(identity, policy), decide(identity, policy, [store], now), now);
for (let i = 0; i < 10_000; i++)
  cache.set(`filler-${i}|route:bench`, { allow: false, reason: "untrusted_issuer", detail: "" }, now);
const t = now.getTime();
const cached = measure(() => {
  const hit = cache.get(decisionCacheKey(identity, policy), t);
  return hit !== undefined && recheckValidity(hit, now).allow;
});

// ---- the report ----
const row = (name: string, us: number, ratio?: number) =>
  `  ${name.padEnd(58)} ${us.toFixed(2).padStart(9)} µs/op ${Math.round(1e6 / us)
    .toLocaleString("en-US")
    .padStart(12)} /s${ratio === undefined ? "" : `   ${ratio.toFixed(2)}× reference`}`;
const verdict = (us: number, aim: number) =>
  us < aim ? `met (${us.toFixed(2)} µs < ${aim} µs)` : `MISSED (${us.toFixed(2)} µs ≥ ${aim} µs)`;

process.stdout.write(
  [
    `identity engine, root → intermediate → leaf, ECDSA P-256 — node ${process.version}, OpenSSL ${process.versions.openssl}, ${availableParallelism()} CPU(s), median of ${ROUNDS} × ${ROUND_MS} ms`,
    row("reference: node:crypto parse 2 certs + verify 2 signatures", reference, 1),
    row("parseCertificate (one certificate)", parseOnly),
    row("uncached: parse leaf + intermediate, verifyChain, decide", uncached, uncached / reference),
    row("new device: parse leaf, intermediate parse-cached, decide", newLeaf, newLeaf / reference),
    row("cached: DecisionCache hit + recheckValidity", cached),
    `  aim cached < ${AIM_CACHED_US} µs: ${verdict(cached, AIM_CACHED_US)}`,
    `  aim uncached < ${AIM_UNCACHED_US} µs: ${verdict(uncached, AIM_UNCACHED_US)}`,
    "",
  ].join("\n"),
);
if (sink === 0) process.exitCode = 1;
