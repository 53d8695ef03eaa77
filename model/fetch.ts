import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
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

/** A file at a URL, pinned by its digest, with the limits its download runs within. */
export interface HttpSource {
  url: string;
  sha256: string;
  timeoutSeconds: number;
  maxSizeMiB: number;
}

export interface FetchOptions {
  /** How messages name the source instead of the URL: a URL from a Secret is never shown, even in part. */
  shownAs?: string;
  /** The largest file the operator holds, whatever the spec allows. */
  maxModelMiB: number;
  /** Loopback is refused unless set (tests serve files from this host). */
  allowLoopback: boolean;
  /** Ends the download at once (shutdown): the fetch rejects with its reason, reporting nothing. */
  signal?: AbortSignal;
  /** A download that receives nothing for this long fails, as a slow-drip source would hold it. */
  idleTimeoutMs?: number;
  /** After twice the idle timeout, a download averaging fewer bytes a second than this fails. */
  minBytesPerSecond?: number;
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
  | { ok: true; digest: string; sizeBytes: number; bytes?: Uint8Array }
  | { ok: false; reason: FetchFailureReason; message: string };

type ConfigMap = KubeObject & { data?: Record<string, string>; binaryData?: Record<string, string> };

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The text of a Secret key: where a URL that carries a token is kept. */
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

/** How a URL kept in a Secret is named in messages. */
export const secretUrlName = (namespace: string, ref: { name: string; key: string }) =>
  `the URL in Secret ${namespace}/${ref.name} (key ${ref.key})`;

/**
 * The URL a spec's http source names, read from its Secret when it is kept there, with the name
 * messages must use for it.
 */
export async function resolveHttpSource(
  client: KubeClient,
  namespace: string,
  http: NonNullable<TriageModelSpec['source']['http']>,
): Promise<{ ok: true; source: HttpSource; shownAs?: string } | { ok: false; message: string }> {
  const { sha256, timeoutSeconds, maxSizeMiB } = http;
  if (http.url) return { ok: true, source: { url: http.url, sha256, timeoutSeconds, maxSizeMiB } };
  if (!http.urlSecretRef) return { ok: false, message: 'spec.source.http names no URL' };
  const read = await readSecretKey(client, namespace, http.urlSecretRef);
  if (!read.ok) return read;
  const shownAs = secretUrlName(namespace, http.urlSecretRef);
  if (!/^https?:\/\/\S+$/.test(read.value))
    return { ok: false, message: `${shownAs} is not an http:// or https:// URL` };
  return { ok: true, source: { url: read.value, sha256, timeoutSeconds, maxSizeMiB }, shownAs };
}

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

/** Where downloaded bytes go as they arrive: memory, or a file on disk. */
interface Sink {
  write(chunk: Uint8Array): Promise<void> | void;
  /** Called once every byte has arrived; returns whatever the caller keeps of them. */
  end(): Promise<Uint8Array | undefined>;
  /** Called when the download fails: drops what was written. */
  discard(): Promise<void>;
}

function memorySink(): Sink {
  const chunks: Uint8Array[] = [];
  return {
    write: (chunk) => void chunks.push(chunk),
    end: async () => Buffer.concat(chunks),
    discard: async () => void chunks.splice(0),
  };
}

function fileSink(path: string): Sink {
  const out = createWriteStream(path, { mode: 0o600 });
  const closed = new Promise<void>((resolve, reject) => {
    out.once('close', resolve);
    out.once('error', reject);
  });
  return {
    async write(chunk) {
      // Backpressure: a fast source never buffers more than the stream's high-water mark in memory.
      if (!out.write(chunk)) await once(out, 'drain');
    },
    async end() {
      out.end();
      await closed;
      return undefined;
    },
    async discard() {
      out.destroy();
      await closed.catch(() => {});
      await rm(path, { force: true });
    },
  };
}

/**
 * Downloads over HTTP(S) within a time limit and a size limit, hashing on the way and checking the
 * SHA-256 the spec pins. A server that sends more than the limit, or declares it, is cut off before
 * the excess is read; one that sends nothing for idleTimeoutMs, or trickles below minBytesPerSecond,
 * is cut off too.
 */
async function download(source: HttpSource, options: FetchOptions, sink: Sink): Promise<Fetched> {
  const operatorMaxMiB = options.maxModelMiB;
  const limitMiB = Math.min(source.maxSizeMiB, operatorMaxMiB);
  const maxBytes = limitMiB * 2 ** 20;
  const timeout = AbortSignal.timeout(source.timeoutSeconds * 1000);
  const slow = new AbortController();
  const signal = AbortSignal.any([timeout, slow.signal, ...(options.signal ? [options.signal] : [])]);
  // Stopped from outside: not the source's fault, so no verdict about it.
  const stopped = () => options.signal?.throwIfAborted();
  const shown = (href: string) => options.shownAs ?? shownUrl(href);
  const failed = async (reason: FetchFailureReason, message: string): Promise<Fetched> => {
    await sink.discard();
    return { ok: false, reason, message };
  };
  let response: Awaited<ReturnType<typeof fetch>>;
  // Redirects are followed here, hop by hop, so each target is checked like the first.
  let url = new URL(source.url);
  for (let hop = 0; ; hop++) {
    const refused = refuseUrl(url, options.allowLoopback);
    if (refused) return failed('SourceForbidden', `refusing ${shown(url.href)}: ${refused}`);
    try {
      response = await fetch(url, {
        signal,
        redirect: 'manual',
        dispatcher: dispatcherFor(options.allowLoopback),
      });
    } catch (err) {
      await sink.discard();
      stopped();
      const cause = timeout.aborted
        ? `no answer within ${source.timeoutSeconds} s`
        : ((err as Error & { cause?: Error }).cause?.message ?? (err as Error).message);
      const reason = cause.includes('model downloads may not reach')
        ? 'SourceForbidden'
        : 'SourceUnavailable';
      return { ok: false, reason, message: `could not download ${shown(url.href)}: ${cause}` };
    }
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) break;
    await response.body?.cancel().catch(() => {});
    if (hop >= maxRedirects)
      return failed('SourceUnavailable', `${shown(source.url)} redirected more than ${maxRedirects} times`);
    url = new URL(location, url);
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel().catch(() => {});
    return failed('SourceUnavailable', `${shown(source.url)} answered HTTP ${response.status}`);
  }
  const limits = `(spec.source.http.maxSizeMiB ${source.maxSizeMiB}, operator ${operatorMaxMiB})`;
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) {
    await response.body.cancel().catch(() => {});
    return failed(
      'SourceTooLarge',
      `${shown(source.url)} is ${(declared / 2 ** 20).toFixed(1)} MiB, over the limit of ${limitMiB} MiB ${limits}`,
    );
  }
  const hash = createHash('sha256');
  let received = 0;
  const started = performance.now();
  let lastChunkAt = started;
  let slowReason = '';
  // A source that stalls or trickles holds a download slot; it is cut off long before its time limit.
  const watchdog = setInterval(() => {
    const now = performance.now();
    const idleMs = options.idleTimeoutMs;
    if (idleMs !== undefined && now - lastChunkAt > idleMs) {
      slowReason = `nothing arrived for ${Math.round(idleMs / 1000)} s`;
    } else if (
      idleMs !== undefined &&
      options.minBytesPerSecond !== undefined &&
      now - started > 2 * idleMs &&
      received / ((now - started) / 1000) < options.minBytesPerSecond
    ) {
      slowReason = `it arrived at ${Math.round(received / ((now - started) / 1000))} bytes/s, below the least of ${options.minBytesPerSecond}`;
    }
    if (slowReason) slow.abort(new Error(slowReason));
  }, 250);
  try {
    for await (const chunk of response.body) {
      lastChunkAt = performance.now();
      received += chunk.byteLength;
      if (received > maxBytes) {
        await response.body.cancel().catch(() => {});
        return failed(
          'SourceTooLarge',
          `${shown(source.url)} sent more than the limit of ${limitMiB} MiB ${limits}`,
        );
      }
      hash.update(chunk);
      await sink.write(chunk);
    }
  } catch (err) {
    await sink.discard();
    stopped();
    const cause = timeout.aborted
      ? `the download took longer than ${source.timeoutSeconds} s`
      : slowReason || (err as Error).message;
    return {
      ok: false,
      reason: 'SourceUnavailable',
      message: `could not download ${shown(source.url)}: ${cause}`,
    };
  } finally {
    clearInterval(watchdog);
  }
  const digest = hash.digest('hex');
  if (digest !== source.sha256) {
    return failed(
      'DigestMismatch',
      `the file at ${shown(source.url)} (${received} bytes) has sha256 ${digest}; spec.source.http.sha256 is ${source.sha256}: fix the digest or the file`,
    );
  }
  const bytes = await sink.end();
  return { ok: true, digest, sizeBytes: received, ...(bytes ? { bytes } : {}) };
}

/** Downloads a model into memory (small files: releases) within the spec's limits, digest checked. */
export async function fetchHttp(
  source: HttpSource,
  options: FetchOptions,
): Promise<Fetched & ({ ok: false } | { bytes: Uint8Array })> {
  return (await download(source, options, memorySink())) as Fetched & ({ ok: false } | { bytes: Uint8Array });
}

/**
 * Downloads a model to a file, hashing on the way: however large the file, only a chunk at a time is
 * in memory. The file is removed when the download fails.
 */
export function downloadToFile(source: HttpSource, path: string, options: FetchOptions): Promise<Fetched> {
  return download(source, options, fileSink(path));
}
