import type { InferencePool, TriageModel } from '../../crds/kinds.ts';
import { releaseLabel } from '../../crds/labels.ts';
import { maxConfigMapModelBytes } from '../../crds/triagemodel.ts';
import { readConfigMapKey, resolveHttpSource, sha256 } from '../../model/source.ts';
import type { ValidationResponse } from '../../model/validation-protocol.ts';
import type { ValidatorClient } from '../../model/validator-client.ts';
import { fieldManager } from '../../operator/apply.ts';
import type { Informer } from '../../operator/informer.ts';
import { isConflict, isNotFound, type KubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { desiredRelease } from './desired.ts';
import { type ModelRelease, parseRelease, releaseName } from './release.ts';

const sourceChangedRetryMs = 15_000;
/** Releases kept beside the current one, so a rollback finds its files. */
const keptPreviousReleases = 2;
const lastServedAnnotation = 'aurora.health/last-served';

/** Release ConfigMaps are cached without the model file: the controller reads only release.json. */
export function withoutFile(obj: KubeObject): KubeObject {
  const { binaryData: _file, ...rest } = obj as KubeObject & { binaryData?: unknown };
  delete rest.metadata.managedFields;
  return rest as KubeObject;
}

const ownedBy = (obj: KubeObject, owner: KubeObject) =>
  obj.metadata.ownerReferences?.some((r) => r.controller === true && r.uid === owner.metadata.uid) ?? false;

export type EnsuredRelease = { ok: true } | { ok: false; message: string; retryMs: number };

/**
 * A pool's releases on the API server: the immutable ConfigMaps that hold each validated version's file
 * and contract. Written once per version from the validated bytes, marked when they stop being served,
 * pruned after a rollout to the current one and the two served last.
 */
export function createReleaseStore(options: {
  client: KubeClient;
  /** Release ConfigMaps, cached without their files (withoutFile). */
  releases: Informer<KubeObject>;
  /** Fetches small HTTP files for releases: the operator itself downloads nothing. */
  validator: ValidatorClient;
}) {
  const { client, releases } = options;

  /** The pool's own releases: labelled for it and owned by this incarnation of it (same uid). */
  const own = (pool: InferencePool) =>
    releases
      .list(pool.metadata.namespace)
      .filter((cm) => cm.metadata.labels?.[releaseLabel] === pool.metadata.name && ownedBy(cm, pool));

  return {
    /** The pool's releases by ConfigMap name, as recorded in each. */
    known(pool: InferencePool): Map<string, ModelRelease> {
      return new Map(
        own(pool).flatMap((cm) => {
          const release = parseRelease(cm);
          return release ? [[cm.metadata.name, release] as const] : [];
        }),
      );
    },

    /** Writes the release for a validated version, or says why it cannot yet (the source moved on). */
    async ensure(
      pool: InferencePool,
      model: TriageModel,
      release: ModelRelease,
      signal: AbortSignal,
    ): Promise<EnsuredRelease> {
      const existing = releases.get(`${pool.metadata.namespace}/${releaseName(pool.metadata.name, release)}`);
      if (existing && ownedBy(existing, pool)) return { ok: true };
      if (existing) {
        // Left by an earlier pool of the same name, which garbage collection is about to remove.
        await client.delete(existing);
        return {
          ok: false,
          message: 'replacing a release left by an earlier pool of this name',
          retryMs: 2000,
        };
      }
      let file: Uint8Array | undefined;
      const source = model.spec.source.configMap;
      const http = model.spec.source.http;
      if (http && !release.http) {
        // Small enough to release: fetched once more by the validator, under its egress rules, and checked.
        const resolved = await resolveHttpSource(client, pool.metadata.namespace ?? '', http);
        if (!resolved.ok) return { ok: false, message: resolved.message, retryMs: sourceChangedRetryMs };
        let fetched: ValidationResponse;
        try {
          fetched = await options.validator.validate(
            {
              namespace: pool.metadata.namespace ?? 'default',
              mode: 'fetch',
              maxModelMiB: Math.ceil(maxConfigMapModelBytes / 2 ** 20),
              source: { http: resolved.source, ...(resolved.shownAs ? { shownAs: resolved.shownAs } : {}) },
              run: { executionProviders: ['cpu'], vectors: [], latencyRuns: 0 },
            },
            signal,
          );
        } catch (err) {
          signal.throwIfAborted();
          return { ok: false, message: (err as Error).message, retryMs: sourceChangedRetryMs };
        }
        if (!fetched.fetched) return { ok: false, message: fetched.message, retryMs: sourceChangedRetryMs };
        if (fetched.digest !== release.digest || fetched.base64 === undefined) {
          return {
            ok: false,
            message: `the file at the source is no longer the one that passed (sha256 ${release.digest.slice(0, 12)})`,
            retryMs: sourceChangedRetryMs,
          };
        }
        file = Buffer.from(fetched.base64, 'base64');
      } else if (source) {
        const read = await readConfigMapKey(client, pool.metadata.namespace ?? '', source);
        if (!read.ok) return { ok: false, message: read.message, retryMs: sourceChangedRetryMs };
        // The ConfigMap may have changed since validation: only the validated bytes are released.
        if (sha256(read.bytes) !== release.digest) {
          return {
            ok: false,
            message: `ConfigMap ${source.name} no longer holds the file that passed (sha256 ${release.digest.slice(0, 12)})`,
            retryMs: sourceChangedRetryMs,
          };
        }
        file = read.bytes;
      }
      try {
        await client.create(desiredRelease(pool, release, file), { fieldManager });
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
      return { ok: true };
    },

    /** Records when a release stopped being the one the pods move to: pruning keeps the latest served. */
    async markLastServed(namespace: string, name: string, now: Date): Promise<void> {
      await client
        .patch(
          { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace } },
          { metadata: { annotations: { [lastServedAnnotation]: now.toISOString() } } },
          { type: 'merge', fieldManager },
        )
        .catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        });
    },

    /** Once a rollout is done, deletes the pool's releases beyond the current one and the two served last. */
    async prune(pool: InferencePool, keep: string): Promise<void> {
      const servedAt = (cm: KubeObject) =>
        cm.metadata.annotations?.[lastServedAnnotation] ?? String(cm.metadata.creationTimestamp);
      const older = own(pool)
        .filter((cm) => cm.metadata.name !== keep)
        .sort((a, b) => servedAt(b).localeCompare(servedAt(a)));
      for (const cm of older.slice(keptPreviousReleases)) await client.delete(cm);
    },
  };
}
