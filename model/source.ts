// Where a model file is, as the operator reads it through the API server: ConfigMap keys, Secret keys
// holding a URL, and how messages name a source. No download happens here (model/fetch.ts does that,
// in the validator and the triage server), so the operator never loads an HTTP client for them.
import { createHash } from 'node:crypto';
import type { TriageModelSpec } from '../crds/triagemodel.ts';
import type { KubeClient } from '../operator/kube/client.ts';
import { readSecretKey } from '../operator/kube/secrets.ts';
import type { KubeObject } from '../operator/kube/types.ts';

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

type ConfigMap = KubeObject & { data?: Record<string, string>; binaryData?: Record<string, string> };

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

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
