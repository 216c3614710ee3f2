// nameConstraints over the rules corpus: permitted and excluded subtrees of every name type (DNS, email,
// URI, IPv4, IPv6, directoryName), on an intermediate and on the anchor, each with the exact reason code.
import assert from "node:assert/strict";
import { test } from "node:test";
import { uriHost } from "./name-constraints.ts";
import * as c from "./testing/corpus.ts";
import * as r from "./testing/corpus-rules.ts";
import { runRows } from "./testing/rows.ts";

const NCV = "name_constraints_violation";
runRows([
  // nameConstraints: DNS
  {
    name: "NC DNS: subdomain of a permitted subtree",
    leaf: r.dnsInside.cert,
    untrusted: [r.ncDns.cert],
    expect: "ok",
  },
  {
    name: "NC DNS: the permitted domain itself, any case",
    leaf: r.dnsApex.cert,
    untrusted: [r.ncDns.cert],
    expect: "ok",
  },
  {
    name: "NC DNS: an absolute name (trailing dot) is not a valid dNSName: refused, not passed",
    leaf: r.dnsAbsolute.cert,
    untrusted: [r.ncDns.cert],
    expect: NCV,
    detail: "cannot be checked",
  },
  {
    name: "NC DNS: one SAN outside the permitted subtree",
    leaf: r.dnsOutside.cert,
    untrusted: [r.ncDns.cert],
    expect: NCV,
    detail: 'DNS:"evil.com"',
  },
  {
    name: "NC DNS: a look-alike suffix is not a subdomain",
    leaf: r.dnsLookalike.cert,
    untrusted: [r.ncDns.cert],
    expect: NCV,
    detail: "notexample.com",
  },
  {
    name: "NC DNS: inside an excluded subtree",
    leaf: r.dnsExcluded.cert,
    untrusted: [r.ncDns.cert],
    expect: NCV,
    detail: "excluded",
  },
  {
    name: "NC DNS: a wildcard that reaches an excluded subtree",
    leaf: r.dnsWildcardExcluded.cert,
    untrusted: [r.ncDns.cert],
    expect: NCV,
    detail: "excluded",
  },
  {
    name: "NC DNS: host-like CN of a leaf without DNS SAN is checked",
    leaf: r.cnHostOutside.cert,
    untrusted: [r.ncDns.cert],
    expect: NCV,
    detail: 'DNS:"www.evil.com"',
  },
  {
    name: "NC DNS: host-like CN inside the subtree",
    leaf: r.cnHostInside.cert,
    untrusted: [r.ncDns.cert],
    expect: "ok",
  },
  {
    name: "NC DNS: a plain device-id CN is not a host name",
    leaf: r.cnPlain.cert,
    untrusted: [r.ncDns.cert],
    expect: "ok",
  },
  {
    name: "NC DNS: no name of the constrained type",
    leaf: c.underConstrained.cert,
    untrusted: [c.constrainedInt.cert],
    expect: "ok",
  },
  // email
  {
    name: "NC email: mailbox on the permitted host",
    leaf: r.emailInside.cert,
    untrusted: [r.ncEmail.cert],
    expect: "ok",
  },
  {
    name: "NC email: a subdomain is not the host",
    leaf: r.emailOutside.cert,
    untrusted: [r.ncEmail.cert],
    expect: NCV,
    detail: "dev@mail.example.com",
  },
  {
    name: "NC email: emailAddress in the subject DN",
    leaf: r.emailInSubject.cert,
    untrusted: [r.ncEmail.cert],
    expect: NCV,
    detail: 'email:"dev@evil.com"',
  },
  // URI
  {
    name: "NC URI: host within a .domain subtree (port ignored)",
    leaf: r.uriInside.cert,
    untrusted: [r.ncUri.cert],
    expect: "ok",
  },
  {
    name: "NC URI: host outside",
    leaf: r.uriOutside.cert,
    untrusted: [r.ncUri.cert],
    expect: NCV,
    detail: "devices.evil.com",
  },
  {
    name: "NC URI: a URN has no host to permit",
    leaf: r.uriUrn.cert,
    untrusted: [r.ncUri.cert],
    expect: NCV,
    detail: "urn:device:uri-urn",
  },
  // IP
  {
    name: "NC IPv4: inside the permitted network",
    leaf: r.ip4Inside.cert,
    untrusted: [r.ncIp4.cert],
    expect: "ok",
  },
  {
    name: "NC IPv4: outside",
    leaf: r.ip4Outside.cert,
    untrusted: [r.ncIp4.cert],
    expect: NCV,
    detail: 'IP:"192.168.1.10"',
  },
  {
    name: "NC IPv4: in the excluded network",
    leaf: r.ip4Excluded.cert,
    untrusted: [r.ncIp4.cert],
    expect: NCV,
    detail: 'excluded subtree IP:"10.66.0.0/16"',
  },
  {
    name: "NC IPv4: an IPv6 address is outside IPv4 subtrees",
    leaf: r.ip4GotV6.cert,
    untrusted: [r.ncIp4.cert],
    expect: NCV,
    detail: "2001:db8::1",
  },
  { name: "NC IPv6: inside", leaf: r.ip6Inside.cert, untrusted: [r.ncIp6.cert], expect: "ok" },
  {
    name: "NC IPv6: outside",
    leaf: r.ip6Outside.cert,
    untrusted: [r.ncIp6.cert],
    expect: NCV,
    detail: "2001:dead::1",
  },
  {
    name: "NC IPv6: in the excluded network",
    leaf: r.ip6Excluded.cert,
    untrusted: [r.ncIp6.cert],
    expect: NCV,
    detail: "2001:db8:bad::/48",
  },
  // directoryName
  {
    name: "NC DN: subject starts with the permitted RDNs (case-insensitive)",
    leaf: r.dnInside.cert,
    untrusted: [r.ncDn.cert],
    expect: "ok",
  },
  {
    name: "NC DN: subject outside",
    leaf: r.dnOutside.cert,
    untrusted: [r.ncDn.cert],
    expect: NCV,
    detail: 'DirName:"CN=dn-out,O=Evil"',
  },
  {
    name: "NC on the anchor: an intermediate outside",
    leaf: r.underEvilInt.cert,
    untrusted: [r.evilIntUnderNcRoot.cert],
    store: r.ruleStores.ncRoot,
    expect: NCV,
    detail: 'certificate "CN=Evil CA,O=Evil"',
  },
  {
    name: "NC on the anchor: intermediate and leaf inside",
    leaf: r.underAcmeInt.cert,
    untrusted: [r.acmeIntUnderNcRoot.cert],
    store: r.ruleStores.ncRoot,
    expect: "ok",
  },
  {
    name: "NC on the anchor: reaches the leaf through the intermediate",
    leaf: r.plainUnderAcmeInt.cert,
    untrusted: [r.acmeIntUnderNcRoot.cert],
    store: r.ruleStores.ncRoot,
    expect: NCV,
    detail: 'certificate "CN=under-fine-plain"',
  },
]);

test("uriHost: the host of a URI with an authority, never of a URN or an IP literal", () => {
  assert.equal(uriHost("https://user@A.Example.com.:8443/p?q#f"), "a.example.com");
  assert.equal(uriHost("mqtts://broker.example.com"), "broker.example.com");
  assert.equal(uriHost("urn:device:abc"), undefined);
  assert.equal(uriHost("https://[2001:db8::1]/"), undefined);
  assert.equal(uriHost("https://10.0.0.1/"), undefined);
  assert.equal(uriHost("https:///path"), undefined);
});
