import { lookup } from 'node:dns';
import ipaddr from 'ipaddr.js';
import { Agent } from 'undici';

/**
 * Cloud metadata services that do not sit in the link-local range (which is refused whole): they hand
 * out the node's cloud credentials to anyone who asks from the machine.
 */
const metadataServices: ReadonlyArray<[string, string]> = [
  ['fd00:ec2::254', 'the AWS instance metadata service (IPv6)'],
  ['fd20:ce::254', 'the Google Cloud metadata server (IPv6)'],
  ['100.100.100.200', 'the Alibaba Cloud metadata service'],
  ['192.0.0.192', 'the Oracle Cloud metadata service'],
  ['168.63.129.16', "Azure's platform endpoint (WireServer)"],
];
const metadataByAddress = new Map(metadataServices.map(([ip, name]) => [ipaddr.parse(ip).toString(), name]));

const loopback = "a loopback address (the operator's own host)";

/** Why an IPv4 address may not be reached, or undefined. */
function forbiddenIPv4(address: ipaddr.IPv4, allowLoopback: boolean): string | undefined {
  const metadata = metadataByAddress.get(address.toString());
  if (metadata) return `${metadata}'s address`;
  switch (address.range()) {
    case 'linkLocal':
      return 'a link-local address (where cloud metadata services answer)';
    case 'unspecified':
      return 'an unspecified address';
    case 'broadcast':
      return 'a broadcast address';
    case 'multicast':
      return 'a multicast address';
    case 'loopback':
      return allowLoopback ? undefined : loopback;
    default:
      return undefined;
  }
}

const v4 = (bytes: number[]) => ipaddr.fromByteArray(bytes) as ipaddr.IPv4;

/**
 * The IPv4 addresses an IPv6 address carries, which a translator, a tunnel or the host's dual stack
 * may deliver to: mapped and translated (::ffff:a.b.c.d, ::ffff:0:a.b.c.d), compatible (::a.b.c.d),
 * NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48), 6to4 (2002::/16) and Teredo (server and
 * client, 2001::/32).
 */
function embeddedIPv4(address: ipaddr.IPv6): ipaddr.IPv4[] {
  const b = address.toByteArray();
  const last = b.slice(12, 16);
  const zero = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  const found: ipaddr.IPv4[] = [];
  switch (address.range()) {
    case 'ipv4Mapped':
    case 'rfc6145':
      found.push(v4(last));
      break;
    case 'rfc6052':
      // The well-known /96 ends with the address; the local-use /48 is decoded below.
      if (zero(4, 12)) found.push(v4(last));
      break;
    case '6to4':
      found.push(v4(b.slice(2, 6)));
      break;
    case 'teredo':
      found.push(v4(b.slice(4, 8)), v4(last.map((x) => x ^ 0xff)));
      break;
  }
  // Deprecated IPv4-compatible form: 96 zero bits, then the address (:: and ::1 are not it).
  if (zero(0, 12) && !zero(12, 15)) found.push(v4(last));
  // RFC 8215 local-use NAT64 with a /48 prefix: the address around the reserved u octet (bits 64-71).
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && b[4] === 0x00 && b[5] === 0x01)
    found.push(v4([b[6] as number, b[7] as number, b[9] as number, b[10] as number]));
  return found;
}

/**
 * Why a model download may not reach this address, or undefined when it may. It decides on the
 * parsed address, so every spelling of one address gets one answer: dotted, decimal, octal and hex
 * IPv4, and IPv6 with an IPv4 address inside. Refused: link-local (cloud metadata services answer there),
 * the metadata services outside it, unspecified, broadcast and multicast always; loopback (the
 * operator's own ports) unless allowed. Cluster-internal services stay reachable: a hospital's model
 * registry is one.
 */
export function forbiddenAddress(ip: string, options: { allowLoopback: boolean }): string | undefined {
  const text = ip.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  if (!ipaddr.isValid(text)) return undefined;
  const address = ipaddr.parse(text);
  if (address.kind() === 'ipv4') return forbiddenIPv4(address as ipaddr.IPv4, options.allowLoopback);
  const v6 = address as ipaddr.IPv6;
  const metadata = metadataByAddress.get(v6.toString());
  if (metadata) return `${metadata}'s address`;
  switch (v6.range()) {
    case 'linkLocal':
      return 'a link-local address';
    case 'unspecified':
      return 'an unspecified address';
    case 'multicast':
      return 'a multicast address';
    case 'loopback':
      if (!options.allowLoopback) return loopback;
      break;
  }
  for (const inner of embeddedIPv4(v6)) {
    const why = forbiddenIPv4(inner, options.allowLoopback);
    if (why) return why;
  }
  return undefined;
}

/** Whether a host as written in a URL or a DNS answer is an IP address in any spelling. */
export function isAddressLiteral(host: string): boolean {
  return ipaddr.isValid(host.replace(/^\[|\]$/g, '').replace(/%.*$/, ''));
}

/** An undici dispatcher that checks every address it connects to, after DNS: no rebinding around it. */
export function guardedDispatcher(options: { allowLoopback: boolean }): Agent {
  return new Agent({
    connect: {
      lookup: (hostname, lookupOptions, callback) => {
        lookup(hostname, { ...lookupOptions, all: true }, (err, addresses) => {
          if (err) return callback(err, '', 4);
          const list = addresses as Array<{ address: string; family: number }>;
          for (const { address } of list) {
            const why = forbiddenAddress(address, options);
            if (why)
              return callback(
                new Error(`${hostname} resolves to ${why}, which model downloads may not reach`),
                '',
                4,
              );
          }
          if ((lookupOptions as { all?: boolean }).all)
            return (callback as (e: null, a: typeof list) => void)(null, list);
          const first = list[0];
          return callback(null, first?.address ?? '', first?.family ?? 4);
        });
      },
    },
  });
}
