import { createHash } from 'node:crypto';
import type { TriageModel } from '../../crds/kinds.ts';
import { maxConfigMapModelBytes, type TriageModelSpec } from '../../crds/triagemodel.ts';
import type { KubeObject } from '../../operator/kube/types.ts';

/**
 * A model version that passed acceptance, as a pool serves it: recorded in an immutable ConfigMap (the
 * release) when it passes, so the pool can keep serving it after the TriageModel moves on or its source
 * ConfigMap is rewritten.
 */
export interface ModelRelease {
  model: string;
  version: string;
  /** sha256 of the file, hex. */
  digest: string;
  measuredMemoryMiB: number;
  contract: Pick<TriageModelSpec, 'version' | 'inputs' | 'outputs' | 'executionProviders'>;
  /** For files downloaded by the pod; a release without it carries the file itself. */
  http?: {
    /** The URL, when it holds no secret; else the Secret key the pods read it from. */
    url?: string;
    urlSecretRef?: { name: string; key: string };
    sha256: string;
    timeoutSeconds: number;
    maxSizeMiB: number;
  };
}

/** What the pool knows of its TriageModel: validated (servable), being validated, rejected, or missing. */
export type ModelState =
  | { kind: 'missing'; name: string }
  | { kind: 'pending'; name: string; version: string }
  | { kind: 'rejected'; name: string; version: string; reason: string; message: string }
  | { kind: 'validated'; name: string; release: ModelRelease };

/** Reads the TriageModel's status: only a version whose status speaks of the current spec counts. */
export function modelState(name: string, model: TriageModel | undefined): ModelState {
  if (!model) return { kind: 'missing', name };
  const { spec, status } = model;
  const ready = status?.conditions?.find((c) => c.type === 'Ready');
  const current = status?.observedGeneration === model.metadata.generation;
  if (!current || !ready || ready.status === 'Unknown') {
    return { kind: 'pending', name, version: spec.version };
  }
  if (ready.status !== 'True') {
    return { kind: 'rejected', name, version: spec.version, reason: ready.reason, message: ready.message };
  }
  const passed =
    status?.validatedVersion === spec.version &&
    status.validatedDigest !== undefined &&
    status.validatedDigest === status.digest;
  if (!passed || !status?.validatedDigest) return { kind: 'pending', name, version: spec.version };
  const digest = status.validatedDigest.replace(/^sha256:/, '');
  // A file small enough for a ConfigMap goes into the release whatever its source, so the pods never
  // depend on the source again; only larger files are downloaded by each pod.
  const http =
    (status.sizeBytes ?? Number.POSITIVE_INFINITY) <= maxConfigMapModelBytes ? undefined : spec.source.http;
  return {
    kind: 'validated',
    name,
    release: {
      model: name,
      version: spec.version,
      digest,
      measuredMemoryMiB: status.measuredMemoryMiB ?? 0,
      contract: {
        version: spec.version,
        inputs: spec.inputs,
        outputs: spec.outputs,
        executionProviders: spec.executionProviders,
      },
      ...(http
        ? {
            http: {
              ...(http.url ? { url: http.url } : {}),
              ...(http.urlSecretRef ? { urlSecretRef: http.urlSecretRef } : {}),
              sha256: http.sha256,
              timeoutSeconds: http.timeoutSeconds,
              maxSizeMiB: http.maxSizeMiB,
            },
          }
        : {}),
    },
  };
}

/**
 * The release to serve: the newest that passed acceptance, unless a rollback pins an earlier one the
 * pool still has while the release it rolled back from is still the newest.
 */
export function chooseRelease(options: {
  newest?: string;
  known: ReadonlySet<string>;
  rollback?: { to?: string; from?: string };
}): { name?: string; rolledBack: boolean } {
  const { newest, known, rollback } = options;
  if (rollback?.to && rollback.from && rollback.from === newest && known.has(rollback.to))
    return { name: rollback.to, rolledBack: true };
  return { ...(newest ? { name: newest } : {}), rolledBack: false };
}

/** The release ConfigMap's name: the pool and a hash of what is served (file and contract). */
export function releaseName(pool: string, release: ModelRelease): string {
  const id = createHash('sha256')
    .update(JSON.stringify([release.digest, release.contract, release.http ?? null]))
    .digest('hex')
    .slice(0, 10);
  return `${pool}-model-${id}`;
}

/** The release a ConfigMap records, or undefined when it is not one. */
export function parseRelease(configMap: KubeObject | undefined): ModelRelease | undefined {
  const text = (configMap as { data?: Record<string, string> } | undefined)?.data?.['release.json'];
  if (!text) return undefined;
  try {
    const release = JSON.parse(text) as ModelRelease;
    return typeof release.digest === 'string' && typeof release.version === 'string' ? release : undefined;
  } catch {
    return undefined;
  }
}
