import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import { parseConfigText } from "./load.ts";
import type { ConfigInput } from "./schema.ts";
import { compileHarness } from "./testing/compile-harness.ts";

const harness = compileHarness("portcullis-config-");
const { dir, base, compile, problems } = harness;

describe("config compiler", () => {
  before(harness.setUp);
  after(harness.cleanUp);

  test("the demo config compiles into listeners, trust stores, services and routes", async () => {
    const config = await compile(base());
    const [listener] = config.listeners;
    assert.equal(listener?.clientAuth, "application");
    assert.deepEqual(
      listener?.trustStores.map((s) => s.name),
      ["devices"],
    );
    assert.deepEqual(listener?.certificates[0]?.names, ["localhost", "mtls.auth.local.com", "127.0.0.1"]);
    assert.equal(
      config.routes.find("mtls.auth.local.com", "GET", "/echo")?.route.policy?.trustStores[0]?.name,
      "devices",
    );
    assert.equal(config.routes.find("localhost", "GET", "/public/echo")?.route.policy, undefined);
    assert.equal(config.services[0]?.connectTimeoutMs, 5000);
    for (const f of ["portcullis.yaml", "server.crt", "server.key", "ca-chain.crt", "admin.token"]) {
      assert.ok(config.files.includes(join(dir, f)), `${f} is watched for reloads`);
    }
    assert.ok(Object.isFrozen(config));
  });

  test("a listener's trust stores default to those the routes name", async () => {
    const config = base();
    delete config.listeners[0]?.trustStores;
    assert.deepEqual(
      (await compile(config)).listeners[0]?.trustStores.map((s) => s.name),
      ["devices"],
    );
  });

  test("unknown keys are errors naming the field path", async () => {
    const config = base() as Record<string, unknown> & ConfigInput;
    config.extra = 1;
    (config.routes[0]?.auth as Record<string, unknown>).trustStore = ["devices"];
    const message = await problems(config);
    assert.match(message, /portcullis\.yaml: \(top level\): unknown key "extra"$/m);
    assert.match(
      message,
      /portcullis\.yaml: routes\[0\]\.auth: unknown key "trustStore" \(did you mean "trustStores"\?\)/,
    );
  });

  test("a missing certificate file is named with its field", async () => {
    const config = base();
    const listener = config.listeners[0];
    if (listener?.certificates[0]) listener.certificates[0].cert = "nope.crt";
    assert.match(
      await problems(config),
      /listeners\[0\]\.certificates\[0\]\.cert: file not found: .*nope\.crt/,
    );
  });

  test("a key that does not match its certificate is refused", async () => {
    const config = base();
    const listener = config.listeners[0];
    if (listener?.certificates[0]) listener.certificates[0].key = "device.key";
    assert.match(
      await problems(config),
      /listeners\[0\]\.certificates\[0\]\.key: device\.key: does not match/,
    );
  });

  test("a broken CA file stops the load (fail closed)", async () => {
    writeFileSync(
      join(dir, "garbage.crt"),
      "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    );
    writeFileSync(join(dir, "empty.crt"), "");
    for (const file of ["garbage.crt", "empty.crt", "device.crt"]) {
      const config = base();
      if (config.trustStores?.[0]) config.trustStores[0].ca = [file];
      assert.match(await problems(config), /trustStores\[0\]\.ca: /, file);
    }
  });

  test("deny by default: a route needs an auth policy or public: true, not both", async () => {
    const config = base();
    if (config.routes[0]) delete config.routes[0].auth;
    assert.match(
      await problems(config),
      /routes\[0\]: a route without an auth policy must say `public: true`/,
    );
    const both = base();
    if (both.routes[0]) both.routes[0].public = true;
    assert.match(await problems(both), /routes\[0\]\.public: a route is either public or has an auth policy/);
  });

  test("a public route no client without a certificate could reach is refused unless it opts in", async () => {
    const config = base();
    delete config.enrollment;
    for (const l of config.listeners) l.clientAuth = "handshake";
    assert.match(
      await problems(config),
      /routes\[1\]\.public: every listener has `clientAuth: handshake`, so a client without a certificate can never reach this public route/,
    );
    const optedIn = structuredClone(config);
    if (optedIn.routes[1]) optedIn.routes[1].publicBehindHandshake = true;
    await compile(optedIn);
    // One listener a certificate-less client can use is enough.
    const mixed = structuredClone(config);
    const [first] = mixed.listeners;
    assert.ok(first);
    mixed.listeners.push({ ...first, name: "open", clientAuth: "application" });
    await compile(mixed);
  });

  test("route groups need a registry lookup that is required", async () => {
    const config = base();
    const auth = config.routes[0]?.auth;
    if (auth) {
      auth.groups = ["fleet"];
      auth.registry = "optional";
    }
    assert.match(await problems(config), /routes\[0\]\.auth\.groups: groups need `registry: required`/);
  });

  test("references must resolve: trust stores, services; names must be unique", async () => {
    const config = base();
    if (config.routes[0]?.auth) config.routes[0].auth.trustStores = ["fleet"];
    if (config.routes[1]) config.routes[1].service = "nowhere";
    config.services.push({ name: "echo", targets: ["http://127.0.0.1:1"] });
    const message = await problems(config);
    assert.match(
      message,
      /routes\[0\]\.auth\.trustStores\[0\]: unknown trust store "fleet" \(known: devices\)/,
    );
    assert.match(message, /routes\[1\]\.service: unknown service "nowhere"/);
    assert.match(message, /services\[1\]\.name: duplicate name "echo"/);
  });

  test("chainLimits and the trust store key policy and profile: defaults, overrides, and errors by field", async () => {
    const defaults = await compile(base());
    assert.deepEqual(defaults.chainLimits, {
      maxCertificates: 10,
      maxBytes: 32_768,
      maxNamesPerCertificate: 64,
      maxSignatureChecks: 32,
      maxNameChecks: 16_384,
    });
    const store = defaults.trustStores[0];
    assert.equal(store?.profile, "strict");
    assert.equal(store?.maxRsaBits, 8192);
    assert.deepEqual(store?.rsaPublicExponents, [65537]);
    assert.deepEqual(store?.curves, ["P-256", "P-384", "P-521"]);

    const tuned = base();
    tuned.chainLimits = { maxCertificates: 4, maxSignatureChecks: 8 };
    const spec = tuned.trustStores?.[0];
    assert.ok(spec);
    Object.assign(spec, {
      profile: "lenient",
      rsaPublicExponents: [3, 65537],
      curves: ["P-256"],
      maxRsaBits: 4096,
    });
    const compiled = await compile(tuned);
    assert.equal(compiled.chainLimits.maxCertificates, 4);
    assert.equal(compiled.chainLimits.maxSignatureChecks, 8);
    assert.equal(compiled.chainLimits.maxBytes, 32_768);
    assert.equal(compiled.trustStores[0]?.profile, "lenient");
    assert.deepEqual(compiled.trustStores[0]?.rsaPublicExponents, [3, 65537]);

    const bad = base();
    bad.chainLimits = { maxCertificates: 0 };
    assert.match(await problems(bad), /chainLimits\.maxCertificates: /);
    const badStore = base();
    Object.assign(badStore.trustStores?.[0] ?? {}, {
      rsaPublicExponents: [4],
      profile: "loose",
      curves: ["P-192"],
    });
    const message = await problems(badStore);
    assert.match(message, /trustStores\[0\]\.rsaPublicExponents\[0\]: an RSA public exponent is odd/);
    assert.match(message, /trustStores\[0\]\.profile: /);
    assert.match(message, /trustStores\[0\]\.curves\[0\]: /);
  });

  test("durations accept numbers and unit strings, and refuse anything else", () => {
    const text = (readTimeout: unknown) =>
      stringify({ ...base(), services: [{ name: "echo", targets: ["http://127.0.0.1:9"], readTimeout }] });
    assert.equal(parseConfigText(text("2m"), "f.yaml").services[0]?.readTimeout, 120_000);
    assert.equal(parseConfigText(text("500ms"), "f.yaml").services[0]?.readTimeout, 500);
    assert.equal(parseConfigText(text(250), "f.yaml").services[0]?.readTimeout, 250);
    assert.throws(() => parseConfigText(text("5 seconds"), "f.yaml"), /services\[0\]\.readTimeout/);
  });

  test("handshakeTimeoutMax: 60 s by default, never below handshakeTimeout", async () => {
    const withLimits = (limits: Record<string, unknown>) => {
      const config = base();
      const [listener] = config.listeners;
      if (listener) (listener as { limits?: unknown }).limits = limits;
      return config;
    };
    const config = await compile(withLimits({ handshakeTimeout: "5s" }));
    assert.equal(config.listeners[0]?.limits.handshakeTimeoutMax, 60_000);
    assert.match(
      await problems(withLimits({ handshakeTimeout: "20s", handshakeTimeoutMax: "15s" })),
      /listeners\[0\]\.limits\.handshakeTimeoutMax: handshakeTimeoutMax must be at least handshakeTimeout/,
    );
  });

  test("invalid YAML reports where", async () => {
    assert.match(await problems("listeners:\n  - name: a\n   bad: [\n"), /YAML line \d+ column \d+/);
  });

  test("hosts must be valid names; clientAuth needs a trust store", async () => {
    const config = base();
    if (config.routes[0]) config.routes[0].hosts = ["evil.com/x"];
    assert.match(await problems(config), /routes\[0\]\.hosts\[0\]: not a valid host name/);
    const noStores = base();
    delete noStores.enrollment;
    noStores.routes = [{ name: "p", paths: ["/"], service: "echo", public: true }];
    if (noStores.listeners[0]) delete noStores.listeners[0].trustStores;
    assert.match(
      await problems(noStores),
      /listeners\[0\]\.clientAuth: clientAuth "application" needs a trust store/,
    );
  });

  test("enrollment: profiles compile, the listener asks for their stores, and mistakes are named by field", async () => {
    const withEnrollment = (profile: Record<string, unknown> = {}, listeners?: string[]): ConfigInput => {
      const config = base();
      config.trustStores = [
        ...(config.trustStores ?? []).filter((t) => t.name === "devices"),
        { name: "factory", ca: ["wrong-ca.crt"] },
      ];
      config.enrollment = {
        ...(listeners ? { listeners } : {}),
        profiles: [
          {
            name: "fleet",
            ca: { cert: "pki/intermediate.crt", key: "pki/intermediate.key", chain: ["pki/root.crt"] },
            trustStore: "devices",
            bootstrap: { tokens: {}, factory: { trustStores: ["factory"] } },
            ...profile,
          } as NonNullable<ConfigInput["enrollment"]>["profiles"][number],
        ],
      };
      if (config.listeners[0]) delete config.listeners[0].trustStores;
      return config;
    };
    const compiled = await compile(withEnrollment({ validity: "30d", overlap: "2h" }));
    const [profile] = compiled.enrollment?.profiles ?? [];
    assert.equal(profile?.name, "fleet");
    assert.equal(profile?.validityMs, 30 * 86_400_000);
    assert.equal(profile?.overlapMs, 2 * 3_600_000);
    assert.deepEqual(
      profile?.factory?.trustStores.map((s) => s.name),
      ["factory"],
    );
    assert.equal(profile?.renewal.registry, "required");
    assert.ok(compiled.enrollment?.listeners.has("demo"));
    // The listener asks for the factory store in its CertificateRequest, or factory certificates never arrive.
    assert.deepEqual(compiled.listeners[0]?.trustStores.map((s) => s.name).sort(), ["devices", "factory"]);

    assert.match(
      await problems(withEnrollment({ trustStore: "factory", bootstrap: { tokens: {} } })),
      /enrollment\.profiles\[0\]\.trustStore: trust store "factory" does not hold the issuing CA/,
    );
    assert.match(
      await problems(withEnrollment({ bootstrap: { factory: { trustStores: ["devices"] } } })),
      /bootstrap\.factory\.trustStores: trust store "devices" is both the factory store and the operational one/,
    );
    assert.match(
      await problems(
        withEnrollment({ ca: { cert: "pki/intermediate.crt", key: "pkcs11:token=hsm;object=ca" } }),
      ),
      /enrollment\.profiles\[0\]\.ca\.key: PKCS#11 keys are not supported yet/,
    );
    assert.match(
      await problems(withEnrollment({ ca: { cert: "server.crt", key: "server.key" } })),
      /enrollment\.profiles\[0\]\.ca\.cert: server\.crt: CN=localhost is not a CA certificate/,
    );
    assert.match(
      await problems(withEnrollment({ bootstrap: {} })),
      /name at least one bootstrap: tokens or factory/,
    );
    const shadowed = withEnrollment();
    shadowed.routes.push({ name: "est-proxy", paths: ["/.well-known/est/"], service: "echo", public: true });
    assert.match(
      await problems(shadowed),
      new RegExp(
        `routes\\[${shadowed.routes.length - 1}\\]\\.paths\\[0\\]: every listener answers /\\.well-known/est/ itself`,
      ),
    );
    assert.match(
      await problems(withEnrollment({}, ["nope"])),
      /enrollment\.listeners\[0\]: unknown listener "nope"/,
    );
    const handshakeOnly = withEnrollment();
    for (const l of handshakeOnly.listeners) l.clientAuth = "handshake";
    if (handshakeOnly.routes[1]) handshakeOnly.routes[1].publicBehindHandshake = true;
    assert.match(
      await problems(handshakeOnly),
      /bootstrap\.tokens: every listener serving enrollment has `clientAuth: handshake`/,
    );
    const namedStores = withEnrollment({ bootstrap: { factory: { trustStores: ["factory"] } } });
    for (const l of namedStores.listeners) {
      l.clientAuth = "handshake";
      l.trustStores = ["devices"];
    }
    if (namedStores.routes[1]) namedStores.routes[1].publicBehindHandshake = true;
    assert.match(
      await problems(namedStores),
      /listeners\[0\]\.trustStores: this listener serves enrollment in handshake mode but leaves out trust store "factory"/,
    );
  });

  test("plugins: a route's own replace its service's, configs are checked by each plugin's schema", async () => {
    const config = base();
    const [service] = config.services;
    assert.ok(service);
    service.plugins = [{ name: "request-size-limit", config: { maxBytes: 100 } }];
    const [echo, publicEcho] = config.routes;
    assert.ok(echo && publicEcho);
    echo.plugins = [{ name: "request-size-limit", config: { maxBytes: 5, requireContentLength: false } }];
    const compiled = await compile(config);
    const own = compiled.routes.find("localhost", "GET", "/echo")?.route.plugins;
    assert.deepEqual(
      own?.map((p) => [p.scope, p.config]),
      [["route:echo", { maxBytes: 5, requireContentLength: false }]],
    );
    const inherited = compiled.routes.find("localhost", "GET", "/public/echo")?.route.plugins;
    assert.deepEqual(
      inherited?.map((p) => [p.scope, p.config]),
      [["service:echo", { maxBytes: 100, requireContentLength: true }]],
    );
    // Both routes share the service's one compiled plugin (one state, one limit).
    const again = await compile(config);
    assert.equal(again.routes.find("localhost", "GET", "/public/echo")?.route.plugins?.length, 1);

    const unknown = base();
    if (unknown.routes[0]) unknown.routes[0].plugins = [{ name: "request-size-limt", config: {} }];
    assert.match(
      await problems(unknown),
      /routes\[0\]\.plugins\[0\]\.name: unknown plugin "request-size-limt" \(did you mean "request-size-limit"\?\)/,
    );
    const bad = base();
    if (bad.services[0])
      bad.services[0].plugins = [{ name: "request-size-limit", config: { maxBytes: -1, extra: 1 } }];
    const message = await problems(bad);
    assert.match(message, /services\[0\]\.plugins\[0\]\.config\.maxBytes: /);
    assert.match(message, /services\[0\]\.plugins\[0\]\.config: .*extra/);
    assert.equal(
      message.split("services[0].plugins[0].config.maxBytes").length - 1,
      1,
      "reported once, not per route",
    );
    const twice = base();
    if (twice.routes[0])
      twice.routes[0].plugins = [
        { name: "request-size-limit", config: { maxBytes: 1 } },
        { name: "request-size-limit", config: { maxBytes: 2 } },
      ];
    assert.match(
      await problems(twice),
      /routes\[0\]\.plugins\[1\]\.name: plugin "request-size-limit" is configured twice here/,
    );
  });

  test("stripHeaders, trustedProxies and allowAmbiguousPaths: defaults, overrides, and errors by field", async () => {
    const defaults = await compile(base());
    assert.equal(defaults.stripHeaders.matches("x-original-url"), true);
    assert.equal(defaults.stripHeaders.matches("x-tenant"), false);
    assert.equal(defaults.listeners[0]?.trustedProxies?.has("127.0.0.1"), false);
    assert.equal(defaults.routes.find("localhost", "GET", "/public/echo")?.route.allowAmbiguousPaths, false);

    const tuned = base();
    tuned.stripHeaders = ["X-Tenant", "x_internal-*"];
    if (tuned.listeners[0]) tuned.listeners[0].trustedProxies = ["10.0.0.0/8", "::1", "fd00::/8"];
    if (tuned.routes[1]) tuned.routes[1].allowAmbiguousPaths = true;
    const compiled = await compile(tuned);
    for (const name of ["x-tenant", "X_TENANT", "x-internal-route", "x-original-url"]) {
      assert.equal(compiled.stripHeaders.matches(name), true, name);
    }
    assert.equal(compiled.listeners[0]?.trustedProxies?.has("10.2.3.4"), true);
    assert.equal(compiled.listeners[0]?.trustedProxies?.has("fd00::7"), true);
    assert.equal(compiled.listeners[0]?.trustedProxies?.has("127.0.0.1"), false);
    assert.equal(compiled.routes.find("localhost", "GET", "/public/echo")?.route.allowAmbiguousPaths, true);

    const bad = base();
    bad.stripHeaders = ["x-ok", "x bad", "*"];
    if (bad.listeners[0]) bad.listeners[0].trustedProxies = ["10.0.0.0/33", "proxy.example"];
    const message = await problems(bad);
    assert.match(message, /stripHeaders\[1\]: expected a header name/);
    assert.match(message, /stripHeaders\[2\]: expected a header name/);
    assert.doesNotMatch(message, /stripHeaders\[0\]/);
    assert.match(
      message,
      /listeners\[0\]\.trustedProxies\[0\]: expected an IPv4 or IPv6 address or CIDR range/,
    );
    assert.match(
      message,
      /listeners\[0\]\.trustedProxies\[1\]: expected an IPv4 or IPv6 address or CIDR range/,
    );
  });
});
