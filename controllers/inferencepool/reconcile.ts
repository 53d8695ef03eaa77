import { Gauge } from 'prom-client';
import { inferencePoolSpec } from '../../crds/inferencepool.ts';
import { apiVersion, type InferencePool, type TriageModel } from '../../crds/kinds.ts';
import { createChildApplier, fieldManager, writeStatus } from '../../operator/apply.ts';
import { findCondition, setConditions } from '../../operator/conditions.ts';
import { isConflict } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { Manager } from '../../operator/manager.ts';
import { nodeInformer, nodePlacementEvent } from '../node/reconcile.ts';
import { readConfigMapKey, sha256 } from '../triagemodel/fetch.ts';
import {
  desiredDeployment,
  desiredDisruptionBudget,
  desiredRelease,
  desiredReplicas,
  desiredService,
  type ModelRelease,
  modelState,
  parseRelease,
  poolLabel,
  poolPodMemoryMiB,
  releaseAnnotations,
  releaseName,
} from './desired.ts';
import { inferencePoolStatus, podView } from './status.ts';

const sourceChangedRetryMs = 15_000;
const managedSelector = 'app.kubernetes.io/managed-by=aurora-operator';

/** Release ConfigMaps are cached without the model file: the controller reads only release.json. */
function withoutFile(obj: KubeObject): KubeObject {
  const { binaryData: _file, ...rest } = obj as KubeObject & { binaryData?: unknown };
  delete rest.metadata.managedFields;
  return rest as KubeObject;
}

/**
 * The InferencePool controller: for the version of its TriageModel that passed acceptance, a release
 * (an immutable ConfigMap with the file and contract), a Deployment of triage servers sized by the
 * model's measured memory and placed on Apple silicon, a Service and a PodDisruptionBudget. A version
 * that has not passed never reaches the Deployment, so the pods keep serving the last one that did.
 */
export function registerInferencePoolController(
  manager: Manager,
  options: { image: string; workers?: number; now?: () => Date },
): void {
  const now = options.now ?? (() => new Date());
  const pools = manager.informer<InferencePool>(apiVersion, 'InferencePool', {
    indexers: {
      model: (p) => [`${p.metadata.namespace}/${(p as InferencePool).spec?.modelRef?.name}`],
    },
  });
  const models = manager.informer<TriageModel>(apiVersion, 'TriageModel');
  const deployments = manager.informer('apps/v1', 'Deployment', { labelSelector: managedSelector });
  const services = manager.informer('v1', 'Service', { labelSelector: managedSelector });
  const budgets = manager.informer('policy/v1', 'PodDisruptionBudget', { labelSelector: managedSelector });
  const releases = manager.informer('v1', 'ConfigMap', { labelSelector: poolLabel, transform: withoutFile });
  const pods = manager.informer('v1', 'Pod', {
    labelSelector: poolLabel,
    transform: podView,
    indexers: { pool: (p) => [`${p.metadata.namespace}/${(p as ReturnType<typeof podView>).pod.pool}`] },
  });
  const nodes = nodeInformer(manager);
  const recorder = manager.recorder('aurora-inferencepool');
  const children = createChildApplier(manager.client);
  const podGauge = new Gauge({
    name: 'aurora_inferencepool_pods',
    help: 'Pods of each pool: desired, ready, and unplaced (waiting for unified memory or a node)',
    labelNames: ['namespace', 'pool', 'state'],
    registers: [manager.metrics.registry],
  });

  const poolsOf = (namespace: string | undefined, name: string) =>
    pools.byIndex('model', `${namespace}/${name}`).map((p) => `${p.metadata.namespace}/${p.metadata.name}`);

  /** Writes the release for a validated version, or says why it cannot yet (the source moved on). */
  const ensureRelease = async (
    pool: InferencePool,
    model: TriageModel,
    release: ModelRelease,
  ): Promise<{ ok: true } | { ok: false; message: string }> => {
    const name = releaseName(pool.metadata.name, release);
    if (releases.get(`${pool.metadata.namespace}/${name}`)) return { ok: true };
    let file: Uint8Array | undefined;
    const source = model.spec.source.configMap;
    if (source) {
      const read = await readConfigMapKey(manager.client, pool.metadata.namespace ?? '', source);
      if (!read.ok) return { ok: false, message: read.message };
      // The ConfigMap may have changed since validation: only the validated bytes are released.
      if (sha256(read.bytes) !== release.digest)
        return { ok: false, message: `ConfigMap ${source.name} no longer holds the validated file` };
      file = read.bytes;
    }
    try {
      await manager.client.create(desiredRelease(pool, release, file), { fieldManager });
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
    return { ok: true };
  };

  /** Deletes releases no pod needs: once the rollout is done, only the one the template names stays. */
  const pruneReleases = async (pool: InferencePool, keep: string | undefined, rolloutDone: boolean) => {
    if (!rolloutDone || !keep) return;
    const mine = releases
      .list(pool.metadata.namespace)
      .filter((cm) => cm.metadata.labels?.[poolLabel] === pool.metadata.name && cm.metadata.name !== keep);
    for (const cm of mine) await manager.client.delete(cm);
  };

  manager.addController({
    name: 'inferencepool',
    primary: pools as never,
    owns: [deployments, services, budgets, releases],
    watches: [
      { informer: models as never, map: (m) => poolsOf(m.metadata.namespace, m.metadata.name) },
      {
        informer: pods,
        map: (p) => [`${p.metadata.namespace}/${(p as ReturnType<typeof podView>).pod.pool}`],
      },
      {
        informer: nodes as never,
        filter: nodePlacementEvent,
        map: () => pools.list().map((p) => `${p.metadata.namespace}/${p.metadata.name}`),
      },
    ],
    workers: options.workers ?? 2,
    async reconcile({ key }) {
      const cached = pools.get(key);
      if (!cached || cached.metadata.deletionTimestamp) {
        const [namespace = '', pool = ''] = key.split('/');
        for (const state of ['desired', 'ready', 'unplaced']) podGauge.remove({ namespace, pool, state });
        return undefined;
      }
      const namespace = cached.metadata.namespace ?? '';
      const parsed = inferencePoolSpec.safeParse(cached.spec);
      if (!parsed.success) {
        // The CRD refuses such objects; this guards against a CRD older than the operator.
        const message = parsed.error.issues.map((i) => `spec.${i.path.join('.')}: ${i.message}`).join('; ');
        await writeStatus(manager.client, cached, {
          ...cached.status,
          observedGeneration: cached.metadata.generation,
          conditions: setConditions(
            cached.status?.conditions,
            [{ type: 'Ready', status: 'False', reason: 'InvalidSpec', message }],
            cached.metadata.generation,
            now(),
          ),
        });
        return undefined;
      }
      const pool = { ...cached, spec: parsed.data };
      const model = models.get(`${namespace}/${pool.spec.modelRef.name}`);
      const state = modelState(pool.spec.modelRef.name, model);
      const deployment = deployments.get(key) as
        | (KubeObject & { spec?: { template?: { metadata?: { annotations?: Record<string, string> } } } })
        | undefined;
      const currentRelease =
        deployment?.spec?.template?.metadata?.annotations?.[releaseAnnotations.configMap];
      const knownReleases = new Map(
        releases
          .list(namespace)
          .filter((cm) => cm.metadata.labels?.[poolLabel] === pool.metadata.name)
          .flatMap((cm) => {
            const release = parseRelease(cm);
            return release ? [[cm.metadata.name, release] as const] : [];
          }),
      );

      let served: ModelRelease | undefined;
      let requeueAfterMs: number | undefined;
      let releaseProblem: string | undefined;
      if (state.kind === 'validated' && model) {
        const ensured = await ensureRelease(pool, model, state.release);
        if (ensured.ok) {
          served = state.release;
          knownReleases.set(releaseName(pool.metadata.name, served), served);
        } else {
          releaseProblem = ensured.message;
          requeueAfterMs = sourceChangedRetryMs;
        }
      }
      // Nothing newer that passed: keep what the pods serve now.
      served ??= currentRelease ? knownReleases.get(currentRelease) : undefined;

      if (served) {
        await children.apply(desiredDeployment(pool, served, options.image), deployments.get(key));
        await children.apply(desiredService(pool), services.get(key));
        await children.apply(desiredDisruptionBudget(pool), budgets.get(key));
      }
      const poolPods = pods.byIndex('pool', key) as ReturnType<typeof podView>[];
      const freshDeployment = deployments.get(key);
      const replicas = desiredReplicas(pool.spec);
      const status = inferencePoolStatus({
        pool,
        model:
          releaseProblem && state.kind === 'validated'
            ? { kind: 'pending', name: state.name, version: state.release.version }
            : state,
        ...(served ? { served, podMemoryMiB: poolPodMemoryMiB(pool.spec, served) } : {}),
        desiredReplicas: replicas,
        ...(freshDeployment ? { deployment: freshDeployment } : {}),
        pods: poolPods,
        allPoolPods: pods.list() as ReturnType<typeof podView>[],
        nodes: nodes.list(),
        releases: knownReleases,
        now: now(),
      });
      const progressing = findCondition(status.conditions, 'Progressing');
      if (served) {
        await pruneReleases(
          pool,
          releaseName(pool.metadata.name, served),
          progressing?.reason === 'Complete' &&
            freshDeployment?.spec !== undefined &&
            (freshDeployment as typeof deployment)?.spec?.template?.metadata?.annotations?.[
              releaseAnnotations.configMap
            ] === releaseName(pool.metadata.name, served),
        );
      }
      const labels = { namespace, pool: pool.metadata.name };
      podGauge.set({ ...labels, state: 'desired' }, replicas);
      podGauge.set({ ...labels, state: 'ready' }, status.readyReplicas ?? 0);
      podGauge.set(
        { ...labels, state: 'unplaced' },
        poolPods.filter((p) => p.pod.unschedulable !== undefined && !p.pod.terminating).length,
      );
      const wrote = await writeStatus(manager.client, cached, status as Record<string, unknown>);
      if (wrote) {
        for (const type of ['ModelCurrent', 'Placed', 'Progressing']) {
          const before = findCondition(cached.status?.conditions, type);
          const after = findCondition(status.conditions, type);
          if (!after || (before?.reason === after.reason && before?.status === after.status)) continue;
          const warning =
            ['VersionRejected', 'ModelNotValidated', 'ModelNotFound', 'RolloutStalled'].includes(
              after.reason,
            ) ||
            (type === 'Placed' && after.status === 'False');
          recorder.record(pool, warning ? 'Warning' : 'Normal', after.reason, type, after.message);
        }
      }
      return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
    },
  });
}
