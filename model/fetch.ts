import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { fetch } from 'undici';
import { forbiddenAddress, guardedDispatcher, isAddressLiteral } from './egress.ts';
import { type FetchFailureReason, type HttpSource, shownUrl } from './source.ts';

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

export type Fetched =
  | { ok: true; digest: string; sizeBytes: number; bytes?: Uint8Array }
  | { ok: false; reason: FetchFailureReason; message: string };

/**
 * Why a connection failed, in words of our own: an HTTP client's error text may repeat the URL, and
 * with it a token. Only our own refusals (the egress guard's) pass through whole.
 */
function connectionFailure(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (err as { code?: string }).code;
  if (cause?.message?.includes('model downloads may not reach')) return cause.message;
  switch (code) {
    case 'ECONNREFUSED':
      return 'the connection was refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the host name does not resolve';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'the connection was reset';
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return 'the connection timed out';
    default:
      if (code && /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code))
        return 'its TLS certificate is not trusted';
      return `the connection failed${code ? ` (${code})` : ''}`;
  }
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
  // A write error (a full disk) surfaces in write() or end(); never as a rejection nobody awaits.
  closed.catch(() => {});
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
  const hash = createHash('sha256');
  let received = 0;
  const started = performance.now();
  let lastChunkAt = started;
  let slowReason = '';
  // A source that stalls (before or after its headers) or trickles holds a download slot; it is cut
  // off long before its time limit.
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
    return await transfer();
  } finally {
    clearInterval(watchdog);
  }

  async function transfer(): Promise<Fetched> {
    let response: Awaited<ReturnType<typeof fetch>>;
    // Credentials go in a header, never in the URL (undici refuses them there, and echoes the URL).
    let url = new URL(source.url);
    let authorization =
      url.username || url.password
        ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`
        : undefined;
    url.username = '';
    url.password = '';
    // Redirects are followed here, hop by hop, so each target is checked like the first.
    for (let hop = 0; ; hop++) {
      const refused = refuseUrl(url, options.allowLoopback);
      if (refused) return failed('SourceForbidden', `refusing ${shown(url.href)}: ${refused}`);
      try {
        response = await fetch(url, {
          signal,
          redirect: 'manual',
          dispatcher: dispatcherFor(options.allowLoopback),
          ...(authorization ? { headers: { authorization } } : {}),
        });
      } catch (err) {
        await sink.discard();
        stopped();
        const cause = timeout.aborted
          ? `no answer within ${source.timeoutSeconds} s`
          : slowReason || connectionFailure(err);
        const reason = cause.includes('model downloads may not reach')
          ? 'SourceForbidden'
          : 'SourceUnavailable';
        const message = `could not download ${shown(url.href)}: ${cause}`;
        // A URL from a Secret is named by its Secret; its host is not shown either.
        return {
          ok: false,
          reason,
          message: options.shownAs ? message.replaceAll(url.hostname, 'its host') : message,
        };
      }
      lastChunkAt = performance.now();
      const location = response.headers.get('location');
      if (response.status < 300 || response.status >= 400 || !location) break;
      await response.body?.cancel().catch(() => {});
      if (hop >= maxRedirects)
        return failed('SourceUnavailable', `${shown(source.url)} redirected more than ${maxRedirects} times`);
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        return failed('SourceUnavailable', `${shown(source.url)} redirected to an address that is not a URL`);
      }
      // Credentials are for the server they were given for, not for wherever it redirects.
      if (next.origin !== url.origin) authorization = undefined;
      url = next;
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
        : slowReason || connectionFailure(err);
      return {
        ok: false,
        reason: 'SourceUnavailable',
        message: `could not download ${shown(source.url)}: ${cause}`,
      };
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
