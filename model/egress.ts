import { lookup } from 'node:dns';
import { isIP } from 'node:net';
import { Agent } from 'undici';

/**
 * Addresses a model download may never reach: link-local (cloud metadata services live there) and
 * unspecified always, loopback (the operator's own ports) unless allowed. Cluster-internal services
 * stay reachable: a hospital's model registry is one.
 */
export function forbiddenAddress(ip: string, options: { allowLoopback: boolean }): string | undefined {
  let address = ip.toLowerCase();
  const mapped = address.match(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/);
  if (mapped) address = mapped[1] as string;
  if (isIP(address) === 4) {
    const [a, b] = address.split('.').map(Number);
    if (a === 169 && b === 254) return 'a link-local address (where cloud metadata services answer)';
    if (a === 0) return 'an unspecified address';
    if (a === 127 && !options.allowLoopback) return "a loopback address (the operator's own host)";
    return undefined;
  }
  if (isIP(address) === 6) {
    if (/^fe[89ab]/.test(address)) return 'a link-local address';
    if (address === '::') return 'an unspecified address';
    if (address === '::1' && !options.allowLoopback) return "a loopback address (the operator's own host)";
  }
  return undefined;
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
