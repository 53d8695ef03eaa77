import { createHash } from 'node:crypto';
import { fetch } from 'undici';
import type { TriageModelSpec } from '../../crds/triagemodel.ts';
import type { KubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';

export type FetchFailureReason =
  | 'SourceUnavailable'
  | 'DigestMismatch'
  | 'SourceTooLarge'
  | 'SourceNotSupported';

export type Fetched =
  | { ok: true; bytes: Uint8Array; digest: string }
  | { ok: false; reason: FetchFailureReason; message: string };

type ConfigMap = KubeObject & { data?: Record<string, string>; binaryData?: Record<string, string> };

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The bytes of a ConfigMap key: binaryData (base64) first, then data. */
export async function readConfigMapKey(
  client: KubeClient,
  namespace: string,
  ref: { name: string; key: string },
): Promise<{ ok: true; bytes: Uint8Array } | { ok: false; message: string }> {
  const cm = await client.get<ConfigMap>({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: ref.name, namespace },
  });
  if (!cm) return { ok: false, message: `ConfigMap ${namespace}/${ref.name} does not exist` };
  const binary = cm.binaryData?.[ref.key];
  if (binary !== undefined) return { ok: true, bytes: Buffer.from(binary, 'base64') };
  const text = cm.data?.[ref.key];
  if (text !== undefined) return { ok: true, bytes: Buffer.from(text, 'utf8') };
  return { ok: false, message: `ConfigMap ${namespace}/${ref.name} has no key '${ref.key}'` };
}

/**
 * Downloads over HTTP(S) within a time limit and a size limit, checking the SHA-256 the spec pins. A
 * server that sends more than the limit, or declares it, is cut off before the excess is read.
 */
async function fetchHttp(
  source: NonNullable<TriageModelSpec['source']['http']>,
  operatorMaxMiB: number,
): Promise<Fetched> {
  const limitMiB = Math.min(source.maxSizeMiB, operatorMaxMiB);
  const maxBytes = limitMiB * 2 ** 20;
  const timeout = AbortSignal.timeout(source.timeoutSeconds * 1000);
  let response: Awaited<ReturnType<typeof fetch>>;
  try {
    response = await fetch(source.url, { signal: timeout, redirect: 'follow' });
  } catch (err) {
    const cause = timeout.aborted ? `no answer within ${source.timeoutSeconds} s` : (err as Error).message;
    return { ok: false, reason: 'SourceUnavailable', message: `could not download ${source.url}: ${cause}` };
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel().catch(() => {});
    return {
      ok: false,
      reason: 'SourceUnavailable',
      message: `${source.url} answered HTTP ${response.status}`,
    };
  }
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) {
    await response.body.cancel().catch(() => {});
    return {
      ok: false,
      reason: 'SourceTooLarge',
      message: `${source.url} is ${(declared / 2 ** 20).toFixed(1)} MiB, over the limit of ${limitMiB} MiB (spec.source.http.maxSizeMiB ${source.maxSizeMiB}, operator ${operatorMaxMiB})`,
    };
  }
  const chunks: Uint8Array[] = [];
  let received = 0;
  try {
    for await (const chunk of response.body) {
      received += chunk.byteLength;
      if (received > maxBytes) {
        await response.body.cancel().catch(() => {});
        return {
          ok: false,
          reason: 'SourceTooLarge',
          message: `${source.url} sent more than the limit of ${limitMiB} MiB (spec.source.http.maxSizeMiB ${source.maxSizeMiB}, operator ${operatorMaxMiB})`,
        };
      }
      chunks.push(chunk);
    }
  } catch (err) {
    const cause = timeout.aborted
      ? `the download took longer than ${source.timeoutSeconds} s`
      : (err as Error).message;
    return { ok: false, reason: 'SourceUnavailable', message: `could not download ${source.url}: ${cause}` };
  }
  const bytes = Buffer.concat(chunks);
  const digest = sha256(bytes);
  if (digest !== source.sha256) {
    return {
      ok: false,
      reason: 'DigestMismatch',
      message: `the file at ${source.url} (${bytes.length} bytes) has sha256 ${digest}; spec.source.http.sha256 is ${source.sha256}: fix the digest or the file`,
    };
  }
  return { ok: true, bytes, digest };
}

/** Fetches the model file from the source the spec names. */
export async function fetchModel(
  client: KubeClient,
  namespace: string,
  source: TriageModelSpec['source'],
  operatorMaxMiB = 512,
): Promise<Fetched> {
  if (source.http) return fetchHttp(source.http, operatorMaxMiB);
  if (source.configMap) {
    const read = await readConfigMapKey(client, namespace, source.configMap);
    if (!read.ok) return { ok: false, reason: 'SourceUnavailable', message: read.message };
    return { ok: true, bytes: read.bytes, digest: sha256(read.bytes) };
  }
  return {
    ok: false,
    reason: 'SourceNotSupported',
    message: 'persistentVolumeClaim sources are not validated by this Aurora version; use configMap or http',
  };
}
