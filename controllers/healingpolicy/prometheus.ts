// The PromQL detector's reader: one instant query per policy and check against the Prometheus HTTP API,
// and a pure mapping of its series to targets. The URL comes from a spec, so the request goes through
// the egress guard (no link-local or cloud metadata addresses), follows no redirects, gives up after a
// few seconds and reads at most a few MiB: a bad URL fails only its policy's detector, as Unknown.
import { fetch } from 'undici';
import { guardedDispatcher } from '../../model/egress.ts';
import type { MetricReading } from './detect.ts';

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export type QueryResult = { ok: true; samples: Sample[] } | { ok: false; reason: string };

const maxBodyBytes = 4 * 1024 * 1024;
const timeoutMs = 5_000;
const dispatcher = guardedDispatcher({ allowLoopback: true });

export async function queryPrometheus(
  baseUrl: string,
  query: string,
  signal?: AbortSignal,
): Promise<QueryResult> {
  const url = new URL('api/v1/query', baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  let response: Awaited<ReturnType<typeof fetch>>;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ query }).toString(),
      redirect: 'error',
      signal: signal
        ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
        : AbortSignal.timeout(timeoutMs),
      dispatcher,
    });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    return { ok: false, reason: e.name === 'TimeoutError' ? 'Timeout' : (e.cause?.code ?? 'Unreachable') };
  }
  const length = Number(response.headers.get('content-length') ?? 0);
  if (length > maxBodyBytes) return { ok: false, reason: 'ResponseTooLarge' };
  const text = await readLimited(response);
  if (text === undefined) return { ok: false, reason: 'ResponseTooLarge' };
  let body: { status?: string; errorType?: string; data?: { resultType?: string; result?: unknown } };
  try {
    body = JSON.parse(text);
  } catch {
    return { ok: false, reason: `HTTP${response.status}` };
  }
  if (body.status !== 'success')
    return { ok: false, reason: safeWord(body.errorType) ?? `HTTP${response.status}` };
  if (body.data?.resultType !== 'vector' || !Array.isArray(body.data.result))
    return { ok: false, reason: 'NotAVector' };
  const samples: Sample[] = [];
  for (const s of body.data.result as Array<{ metric?: Record<string, string>; value?: [number, string] }>) {
    const value = Number(s.value?.[1]);
    if (s.metric && Number.isFinite(value)) samples.push({ labels: s.metric, value });
  }
  return { ok: true, samples };
}

async function readLimited(response: Awaited<ReturnType<typeof fetch>>): Promise<string | undefined> {
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > maxBodyBytes) {
      await response.body.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const safeWord = (s: string | undefined) => (s && /^[a-z_]{1,32}$/i.test(s) ? s : undefined);

/**
 * The value for one target: series labelled with its namespace (or none) and its name under the kind's
 * label (deployment, statefulset, inferencepool) or one of its pods under `pod`. Several values (one per
 * pod) give the one furthest past the threshold's side; none is empty, never failing.
 */
export function readingFor(
  result: QueryResult,
  target: { kind: string; namespace: string; name: string; pods: readonly string[] },
  operator: '>' | '>=' | '<' | '<=',
): MetricReading {
  if (!result.ok) return { kind: 'error', reason: result.reason };
  const kindLabel = target.kind.toLowerCase();
  const pods = new Set(target.pods);
  const values = result.samples
    .filter((s) => s.labels.namespace === undefined || s.labels.namespace === target.namespace)
    .filter(
      (s) => s.labels[kindLabel] === target.name || (s.labels.pod !== undefined && pods.has(s.labels.pod)),
    )
    .map((s) => s.value);
  if (values.length === 0) return { kind: 'empty' };
  return { kind: 'value', value: operator.startsWith('>') ? Math.max(...values) : Math.min(...values) };
}
