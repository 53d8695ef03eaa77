import type { KubeClient } from './client.ts';
import type { KubeObject } from './types.ts';

/** The text of a Secret key: where a URL that carries credentials is kept (trimmed: one written with echo ends in a newline). */
export async function readSecretKey(
  client: KubeClient,
  namespace: string,
  ref: { name: string; key: string },
): Promise<{ ok: true; value: string } | { ok: false; message: string }> {
  const secret = await client.get<KubeObject & { data?: Record<string, string> }>({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: ref.name, namespace },
  });
  if (!secret) return { ok: false, message: `Secret ${namespace}/${ref.name} does not exist` };
  const value = secret.data?.[ref.key];
  if (value === undefined)
    return { ok: false, message: `Secret ${namespace}/${ref.name} has no key '${ref.key}'` };
  return { ok: true, value: Buffer.from(value, 'base64').toString('utf8').trim() };
}
