import { createHash } from 'node:crypto';
import { fetch } from 'undici';
import type { TriageModelSpec } from '../crds/triagemodel.ts';
import type { KubeClient } from '../operator/kube/client.ts';
import type { KubeObject } from '../operator/kube/types.ts';
import { forbiddenAddress, guardedDispatcher, isAddressLiteral } from './egress.ts';

export type FetchFailureReason =
  | 'SourceUnavailable'
  | 'DigestMismatch'
  | 'SourceTooLarge'
  | 'SourceNotSupported'
  | 'SourceForbidden';

export interface FetchOptions {
  /** The largest file the operator holds, whatever the spec allows. */
  maxModelMiB: number;
  /** Loopback is refused unless set (tests serve files from this host). */
  allowLoopback: boolean;
  /** Ends the download at once (shutdown): the fetch rejects with its reason, reporting nothing. */
  signal?: AbortSignal;
}

const maxRedirects = 5;
const dispatchers = new Map<boolean, ReturnType<typeof guardedDispatcher>>();
function dispatcherFor(allowLoopback: boolean) {
  const existing = dispatchers.get(allowLoopback);
  if (existing) return existing;
  const created = guardedDispatcher({ allowLoopback });
  dispatchers.set(allowLoopback, created);
  return created;
}

/** Why a URL may not be fetched, decided before any connection: its scheme, or a literal address. */
export function refuseUrl(url: URL, allowLoopback: boolean): string | undefined {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `${url.protocol} URLs are not fetched`;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isAddressLiteral(host)) {
    const why = forbiddenAddress(host, { allowLoopback });
    if (why) return `${host} is ${why}, which model downloads may not reach`;
  }
  return undefined;
}

/**
 * A URL as messages show it: without credentials or query, which may hold a presigned token, since
 * messages reach status conditions, Events and logs.
 */
export function shownUrl(text: string): string {
  try {
    const url = new URL(text);
    return `${url.protocol}//${url.host}${url.pathname}${url.search ? '?…' : ''}`;
  } catch {
    return '(an invalid URL)';
  }
}

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
export async function fetchHttp(
  source: NonNullable<TriageModelSpec['source']['http']>,
  options: FetchOptions,
): Promise<Fetched> {
  const operatorMaxMiB = options.maxModelMiB;
  const limitMiB = Math.min(source.maxSizeMiB, operatorMaxMiB);
  const maxBytes = limitMiB * 2 ** 20;
  const timeout = AbortSignal.timeout(source.timeoutSeconds * 1000);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  // Stopped from outside: not the source's fault, so no verdict about it.
  const stopped = () => options.signal?.throwIfAborted();
  let response: Awaited<ReturnType<typeof fetch>>;
  // Redirects are followed here, hop by hop, so each target is checked like the first.
  let url = new URL(source.url);
  for (let hop = 0; ; hop++) {
    const refused = refuseUrl(url, options.allowLoopback);
    if (refused)
      return { ok: false, reason: 'SourceForbidden', message: `refusing ${shownUrl(url.href)}: ${refused}` };
    try {
      response = await fetch(url, {
        signal,
        redirect: 'manual',
        dispatcher: dispatcherFor(options.allowLoopback),
      });
    } catch (err) {
      stopped();
      const cause = timeout.aborted
        ? `no answer within ${source.timeoutSeconds} s`
        : ((err as Error & { cause?: Error }).cause?.message ?? (err as Error).message);
      const reason = cause.includes('model downloads may not reach')
        ? 'SourceForbidden'
        : 'SourceUnavailable';
      return { ok: false, reason, message: `could not download ${shownUrl(url.href)}: ${cause}` };
    }
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) break;
    await response.body?.cancel().catch(() => {});
    if (hop >= maxRedirects) {
      return {
        ok: false,
        reason: 'SourceUnavailable',
        message: `${shownUrl(source.url)} redirected more than ${maxRedirects} times`,
      };
    }
    url = new URL(location, url);
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel().catch(() => {});
    return {
      ok: false,
      reason: 'SourceUnavailable',
      message: `${shownUrl(source.url)} answered HTTP ${response.status}`,
    };
  }
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) {
    await response.body.cancel().catch(() => {});
    return {
      ok: false,
      reason: 'SourceTooLarge',
      message: `${shownUrl(source.url)} is ${(declared / 2 ** 20).toFixed(1)} MiB, over the limit of ${limitMiB} MiB (spec.source.http.maxSizeMiB ${source.maxSizeMiB}, operator ${operatorMaxMiB})`,
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
          message: `${shownUrl(source.url)} sent more than the limit of ${limitMiB} MiB (spec.source.http.maxSizeMiB ${source.maxSizeMiB}, operator ${operatorMaxMiB})`,
        };
      }
      chunks.push(chunk);
    }
  } catch (err) {
    stopped();
    const cause = timeout.aborted
      ? `the download took longer than ${source.timeoutSeconds} s`
      : (err as Error).message;
    return {
      ok: false,
      reason: 'SourceUnavailable',
      message: `could not download ${shownUrl(source.url)}: ${cause}`,
    };
  }
  const bytes = Buffer.concat(chunks);
  const digest = sha256(bytes);
  if (digest !== source.sha256) {
    return {
      ok: false,
      reason: 'DigestMismatch',
      message: `the file at ${shownUrl(source.url)} (${bytes.length} bytes) has sha256 ${digest}; spec.source.http.sha256 is ${source.sha256}: fix the digest or the file`,
    };
  }
  return { ok: true, bytes, digest };
}

/** Fetches the model file from the source the spec names. */
export async function fetchModel(
  client: KubeClient,
  namespace: string,
  source: TriageModelSpec['source'],
  options: FetchOptions = { maxModelMiB: 512, allowLoopback: false },
): Promise<Fetched> {
  if (source.http) return fetchHttp(source.http, options);
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
