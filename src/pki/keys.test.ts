// Tests of key generation, PKCS#8 PEM export/import and signature parameters.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { test } from "node:test";
import { PkiError } from "./errors.ts";
import {
  exportPrivateKeyPem,
  generateKeyPair,
  importPrivateKeyPem,
  isKeyAlgorithm,
  type KeyAlgorithm,
  signingAlgorithm,
} from "./keys.ts";

const data = new TextEncoder().encode("portcullis");

for (const algorithm of ["ec-p256", "ec-p384", "rsa-2048"] as KeyAlgorithm[]) {
  test(`${algorithm}: PKCS#8 PEM round trip keeps a working key pair`, async () => {
    const keys = await generateKeyPair(algorithm);
    const pem = await exportPrivateKeyPem(keys.privateKey);
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END PRIVATE KEY-----\n$/);
    const imported = await importPrivateKeyPem(pem);
    assert.equal(imported.algorithm, algorithm);
    const params = signingAlgorithm(algorithm);
    const signature = await crypto.subtle.sign(params, imported.keys.privateKey, data);
    assert.ok(await crypto.subtle.verify(params, keys.publicKey, signature, data));
    assert.ok(await crypto.subtle.verify(params, imported.keys.publicKey, signature, data));
  });
}

test("signature parameters follow the key", () => {
  assert.deepEqual(signingAlgorithm("ec-p256"), { name: "ECDSA", hash: "SHA-256" });
  assert.deepEqual(signingAlgorithm("ec-p384"), { name: "ECDSA", hash: "SHA-384" });
  assert.equal(signingAlgorithm("rsa-3072").name, "RSASSA-PKCS1-v1_5");
  assert.ok(isKeyAlgorithm("rsa-4096"));
  assert.ok(!isKeyAlgorithm("ed25519"));
});

test("a traditional EC PRIVATE KEY PEM is accepted", async () => {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const sec1 = String(privateKey.export({ type: "sec1", format: "pem" }));
  assert.equal((await importPrivateKeyPem(sec1)).algorithm, "ec-p256");
});

test("bad or unsupported keys fail with a PkiError naming the source", async () => {
  await assert.rejects(importPrivateKeyPem("hello", "/x/root.key"), (err: Error) => {
    assert.ok(err instanceof PkiError);
    assert.equal(err.message, "/x/root.key: not a PEM private key");
    return true;
  });
  const broken = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  await assert.rejects(importPrivateKeyPem(broken, "k.pem"), /k\.pem: not a PEM private key/);
  const { privateKey } = generateKeyPairSync("ed25519");
  const ed = String(privateKey.export({ type: "pkcs8", format: "pem" }));
  await assert.rejects(importPrivateKeyPem(ed, "ed.pem"), /ed\.pem: unsupported key type/);
});
