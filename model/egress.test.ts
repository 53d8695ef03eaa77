import { describe, expect, it } from 'vitest';
import { forbiddenAddress } from './egress.ts';
import { refuseUrl } from './fetch.ts';

const linkLocal = 'a link-local address (where cloud metadata services answer)';
const loopback = "a loopback address (the operator's own host)";

describe('forbiddenAddress', () => {
  it.each([
    ['169.254.169.254', false, linkLocal],
    ['::ffff:169.254.169.254', true, linkLocal],
    ['fe80::1', true, 'a link-local address'],
    ['0.0.0.0', true, 'an unspecified address'],
    ['::', true, 'an unspecified address'],
    ['127.0.0.1', false, loopback],
    ['::1', false, loopback],
    ['127.0.0.1', true, undefined],
    ['10.96.0.12', false, undefined],
    ['192.168.1.20', false, undefined],
    ['2001:db8::5', false, undefined],
  ])('%s (loopback allowed: %s) → %s', (ip, allowLoopback, expected) => {
    expect(forbiddenAddress(ip, { allowLoopback })).toBe(expected);
  });

  // Every spelling of a forbidden address gets the same answer: the guard decides on the parsed bytes.
  it.each([
    ['decimal IPv4', '2130706433', loopback],
    ['octal IPv4', '0177.0.0.1', loopback],
    ['hex IPv4', '0x7f000001', loopback],
    ['dotted hex IPv4', '0x7f.0x0.0x0.0x1', loopback],
    ['short IPv4', '127.1', loopback],
    ['another loopback in 127/8', '127.53.0.9', loopback],
    ['decimal metadata address', '2852039166', linkLocal],
    ['hex metadata address', '0xa9fea9fe', linkLocal],
    ['octal metadata address', '0251.0376.0251.0376', linkLocal],
    ['IPv4-mapped IPv6, hex', '::ffff:a9fe:a9fe', linkLocal],
    ['IPv4-mapped IPv6, loopback', '::ffff:7f00:1', loopback],
    ['IPv4-mapped IPv6, long form', '0:0:0:0:0:ffff:127.0.0.1', loopback],
    ['IPv4-translated (SIIT)', '::ffff:0:a9fe:a9fe', linkLocal],
    ['IPv4-compatible IPv6', '::169.254.169.254', linkLocal],
    ['IPv4-compatible IPv6, hex', '::7f00:1', loopback],
    ['NAT64 well-known prefix', '64:ff9b::169.254.169.254', linkLocal],
    ['NAT64 well-known prefix, hex', '64:ff9b::7f00:1', loopback],
    ['NAT64 local-use /48', '64:ff9b:1:a9fe:a9:fe00::', linkLocal],
    ['6to4', '2002:a9fe:a9fe::1', linkLocal],
    ['Teredo server', '2001:0:a9fe:a9fe::1', linkLocal],
    ['Teredo client (obfuscated)', '2001:0:4136:e378:8000:63bf:5601:5601', linkLocal],
    ['unspecified, short', '0', 'an unspecified address'],
    ['unspecified 0/8', '0.1.2.3', 'an unspecified address'],
    ['unspecified IPv6, long form', '0:0:0:0:0:0:0:0', 'an unspecified address'],
    ['IPv6 loopback, long form', '0:0:0:0:0:0:0:1', loopback],
    ['IPv6 in brackets with a zone', '[fe80::1%eth0]', 'a link-local address'],
    ['IPv6 link-local, upper case', 'FE80::ABCD', 'a link-local address'],
    ['AWS metadata over IPv6', 'fd00:ec2::254', "the AWS instance metadata service (IPv6)'s address"],
    [
      'AWS metadata over IPv6, long form',
      'fd00:0ec2:0:0:0:0:0:254',
      "the AWS instance metadata service (IPv6)'s address",
    ],
    ['Google Cloud metadata over IPv6', 'fd20:ce::254', "the Google Cloud metadata server (IPv6)'s address"],
    ['Alibaba Cloud metadata', '100.100.100.200', "the Alibaba Cloud metadata service's address"],
    ['Oracle Cloud metadata', '192.0.0.192', "the Oracle Cloud metadata service's address"],
    ['Azure WireServer', '168.63.129.16', "Azure's platform endpoint (WireServer)'s address"],
    ['Azure WireServer, IPv4-mapped', '::ffff:a83f:8110', "Azure's platform endpoint (WireServer)'s address"],
    ['broadcast', '255.255.255.255', 'a broadcast address'],
    ['IPv4 multicast', '224.0.0.1', 'a multicast address'],
    ['IPv6 multicast', 'ff02::1', 'a multicast address'],
  ])('%s: %s → %s', (_name, ip, expected) => {
    expect(forbiddenAddress(ip, { allowLoopback: false })).toBe(expected);
  });

  it.each([
    ['a cluster Service', '10.96.0.12'],
    ['carrier-grade NAT next to the Alibaba address', '100.100.100.201'],
    ['a site on the internet', '93.184.215.14'],
    ['a unique-local IPv6 registry', 'fd12:3456::10'],
    ['a global IPv6 address', '2606:4700::6810:84e5'],
    ['NAT64 of a public address', '64:ff9b::5db8:d70e'],
    ['a host name (checked after DNS, not here)', 'models.example'],
  ])('lets %s through: %s', (_name, ip) => {
    expect(forbiddenAddress(ip, { allowLoopback: false })).toBeUndefined();
  });
});

describe('refuseUrl', () => {
  it.each([
    'http://0x7f.1/m.onnx',
    'http://2130706433/m.onnx',
    'http://0177.0.0.1/m.onnx',
    'http://[::ffff:7f00:1]/m.onnx',
    'http://[::ffff:169.254.169.254]/m.onnx',
    'http://[64:ff9b::a9fe:a9fe]/m.onnx',
    'http://[fd00:ec2::254]/latest/meta-data/',
    'https://169.254.169.254/latest/meta-data/',
    'http://user:secret@[::1]:8080/m.onnx',
  ])('refuses %s before any connection', (url) => {
    expect(refuseUrl(new URL(url), false)).toMatch(/which model downloads may not reach/);
  });

  it.each(['file:///etc/passwd', 'ftp://models.example/m.onnx', 'gopher://x/'])(
    'refuses the scheme of %s',
    (url) => {
      expect(refuseUrl(new URL(url), false)).toMatch(/URLs are not fetched/);
    },
  );

  it('leaves host names to the connect-time check', () => {
    expect(refuseUrl(new URL('https://models.example/m.onnx'), false)).toBeUndefined();
  });
});
