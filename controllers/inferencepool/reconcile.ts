import { Gauge } from 'prom-client';
import { inferencePoolSpec } from '../../crds/inferencepool.ts';
import { apiVersion, type InferencePool, type TriageModel } from '../../crds/kinds.ts';
import { unifiedMemoryResource } from '../../crds/node-labels.ts';
import { createChildApplier, fieldManager, writeStatus } from '../../operator/apply.ts';
import { findCondition, setConditions } from '../../operator/conditions.ts';
import { isConflict, isNotFound } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { Manager } from '../../operator/manager.ts';
import { nodeInformer, nodePlacementEvent } from '../node/reconcile.ts';
import { fetchHttp, readConfigMapKey, sha256 } from '../triagemodel/fetch.ts';
import {
  desiredDeployment,
  desiredDisruptionBudget,
  desiredRelease,
  desiredReplicas,
  desiredService,
  type ModelRelease,
  maxReleasedFileBytes,
  modelState,
  parseRelease,
  poolLabel,
  poolPodMemoryMiB,
  releaseAnnotations,
  releaseLabel,
  releaseName,
  rolloutStrategy,
  templateHashAnnotation,
} from './desired.ts';
import {
  allowedNodes,
  type DeploymentView,
  inferencePoolStatus,
  type PodView,
  podView,
  unifiedMemoryUsage,
} from './status.ts';

const sourceChangedRetryMs = 15_000;
/** Releases kept beside the current one, so a rollback finds its files. */
const keptPreviousReleases = 2;
const lastServedAnnotation = 'aurora.health/last-served';
const managedSelector = 'app.kubernetes.io/managed-by=aurora-operator';

/** Release ConfigMaps are cached without the model file: the controller reads only release.json. */
function withoutFile(obj: KubeObject): KubeObject {
  const { binaryData: _file, ...rest } = obj as KubeObject & { binaryData?: unknown };
  delete rest.metadata.managedFields;
  return rest as KubeObject;
}

const ownedBy = (obj: KubeObject, owner: KubeObject) =>
  obj.metadata.ownerReferences?.some((r) => r.controller === true && r.uid === owner.metadata.uid) ?? false;

/**
 * The InferencePool controller: for the version of its TriageModel that passed acceptance, a release
 * (an immutable ConfigMap with the file and contract), a Deployment of triage servers sized by the
 * model's measured memory and placed on Apple silicon, a Service and a PodDisruptionBudget. A version
 * that has not passed never reaches the Deployment, so the pods keep serving the last one that did.
 */
export function registerInferencePoolController(
  manager: Manager,
  options: { image: string; workers?: number; now?: () => Date; allowLoopbackSources?: boolean },
): void {
  const now = options.now ?? (() => new Date());
  const pools = manager.informer<InferencePool>(apiVersion, 'InferencePool', {
    indexers: {
      model: (p) => [`${p.metadata.namespace}/${(p as InferencePool).spec?.modelRef?.name}`],
    },
  });
  const models = manager.informer<TriageModel>(apiVersion, 'TriageModel');
  const deployments = manager.informer<DeploymentView>('apps/v1', 'Deployment', {
    labelSelector: managedSelector,
  });
  const services = manager.informer('v1', 'Service', { labelSelector: managedSelector });
  const budgets = manager.informer('policy/v1', 'PodDisruptionBudget', { labelSelector: managedSelector });
  const releases = manager.informer('v1', 'ConfigMap', {
    labelSelector: releaseLabel,
    transform: withoutFile,
  });
  const pods = manager.informer<PodView>('v1', 'Pod', {
    labelSelector: poolLabel,
    transform: podView as never,
    indexers: {
      pool: (p) => [`${p.metadata.namespace}/${p.pod.pool}`],
      node: (p) => (p.pod.nodeName ? [p.pod.nodeName] : []),
    },
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

  /** The pool's own releases: labelled for it and owned by this incarnation of it (same uid). */
  const ownReleases = (pool: InferencePool) =>
    releases
      .list(pool.metadata.namespace)
      .filter((cm) => cm.metadata.labels?.[releaseLabel] === pool.metadata.name && ownedBy(cm, pool));

  /** Writes the release for a validated version, or says why it cannot yet (the source moved on). */
  const ensureRelease = async (
    pool: InferencePool,
    model: TriageModel,
    release: ModelRelease,
  ): Promise<{ ok: true } | { ok: false; message: string; retryMs: number }> => {
    const existing = releases.get(`${pool.metadata.namespace}/${releaseName(pool.metadata.name, release)}`);
    if (existing && ownedBy(existing, pool)) return { ok: true };
    if (existing) {
      // Left by an earlier pool of the same name, which garbage collection is about to remove.
      await manager.client.delete(existing);
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
      // Small enough to release: fetched once more, under the operator's egress rules, and checked.
      const fetched = await fetchHttp(http, {
        maxModelMiB: Math.ceil(maxReleasedFileBytes / 2 ** 20),
        allowLoopback: options.allowLoopbackSources ?? false,
      });
      if (!fetched.ok) return { ok: false, message: fetched.message, retryMs: sourceChangedRetryMs };
      if (fetched.digest !== release.digest) {
        return {
          ok: false,
          message: `the file at the source is no longer the one that passed (sha256 ${release.digest.slice(0, 12)})`,
          retryMs: sourceChangedRetryMs,
        };
      }
      file = fetched.bytes;
    } else if (source) {
      const read = await readConfigMapKey(manager.client, pool.metadata.namespace ?? '', source);
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
      await manager.client.create(desiredRelease(pool, release, file), { fieldManager });
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
    return { ok: true };
  };

  /** Records when a release stopped being the one the pods move to: pruning keeps the latest served. */
  const markLastServed = async (namespace: string, name: string) => {
    await manager.client
      .patch(
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace } },
        { metadata: { annotations: { [lastServedAnnotation]: now().toISOString() } } },
        { type: 'merge', fieldManager },
      )
      .catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
  };

  /** Once a rollout is done, deletes the pool's releases beyond the current one and the two served last. */
  const pruneReleases = async (pool: InferencePool, keep: string) => {
    const servedAt = (cm: KubeObject) =>
      cm.metadata.annotations?.[lastServedAnnotation] ?? String(cm.metadata.creationTimestamp);
    const older = ownReleases(pool)
      .filter((cm) => cm.metadata.name !== keep)
      .sort((a, b) => servedAt(b).localeCompare(servedAt(a)));
    for (const cm of older.slice(keptPreviousReleases)) await manager.client.delete(cm);
  };

  manager.addController({
    name: 'inferencepool',
    primary: pools as never,
    owns: [deployments as never, services, budgets, releases],
    watches: [
      { informer: models as never, map: (m) => poolsOf(m.metadata.namespace, m.metadata.name) },
      { informer: pods as never, map: (p) => [`${p.metadata.namespace}/${(p as PodView).pod.pool}`] },
      {
        // A node change matters to the pools with pods on it, and to pools with pods waiting for a node.
        informer: nodes as never,
        filter: nodePlacementEvent,
        map: (node) => [
          ...new Set(
            [
              ...pods.byIndex('node', node.metadata.name),
              ...pods.list().filter((p) => p.pod.unschedulable),
            ].map((p) => `${p.metadata.namespace}/${p.pod.pool}`),
          ),
        ],
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
      const deployment = deployments.get(key);
      const currentRelease =
        deployment?.spec?.template?.metadata?.annotations?.[releaseAnnotations.configMap];
      const knownReleases = new Map(
        ownReleases(pool).flatMap((cm) => {
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
          const name = releaseName(pool.metadata.name, state.release);
          // Sized from the release once it exists, so a later re-measurement does not roll the pods.
          served = knownReleases.get(name) ?? state.release;
          knownReleases.set(name, served);
        } else {
          releaseProblem = ensured.message;
          requeueAfterMs = ensured.retryMs;
        }
      }
      // Nothing newer that passed: keep what the pods serve now.
      served ??= currentRelease ? knownReleases.get(currentRelease) : undefined;

      const replicas = desiredReplicas(pool.spec);
      const podMemoryMiB = served ? poolPodMemoryMiB(pool.spec, served) : undefined;
      let liveDeployment: DeploymentView | undefined = deployment;
      if (served && podMemoryMiB !== undefined) {
        const usage = unifiedMemoryUsage(allowedNodes(pool.spec, nodes.list()), pods.list());
        const reservesUnifiedMemory = pool.spec.placement.appleSilicon === 'Required';
        const poolPodsNow = pods.byIndex('pool', key).filter((p) => !p.pod.terminating);
        const draft = desiredDeployment(pool, served, options.image);
        const strategy = rolloutStrategy({
          replicas,
          roomForOneMore:
            !reservesUnifiedMemory ||
            [...usage.values()].some((u) => u.allocatableMiB - u.usedMiB >= podMemoryMiB),
          live: deployment?.spec?.strategy?.rollingUpdate,
          templateChanged:
            deployment?.metadata.annotations?.[templateHashAnnotation] !==
            draft.metadata.annotations?.[templateHashAnnotation],
          // A surge pod with no room: pods of two templates, and one of them waiting for unified memory.
          surgeBlocked:
            reservesUnifiedMemory &&
            new Set(poolPodsNow.map((p) => p.pod.templateHash)).size > 1 &&
            poolPodsNow.some((p) => p.pod.unschedulable?.includes(`Insufficient ${unifiedMemoryResource}`)),
        });
        const target = releaseName(pool.metadata.name, served);
        liveDeployment =
          (await children.apply(desiredDeployment(pool, served, options.image, strategy), deployment)) ??
          deployment;
        if (currentRelease && currentRelease !== target) await markLastServed(namespace, currentRelease);
        await children.apply(desiredService(pool), services.get(key));
        await children.apply(desiredDisruptionBudget(pool), budgets.get(key));
      }
      // Read together, after the writes' awaits: taken either side of an await, this pool's pods and
      // every pool's pods could disagree, and a pod counted ready would be missing from its node's usage.
      const allPoolPods = pods.list();
      const poolPods = pods.byIndex('pool', key);
      const status = inferencePoolStatus({
        pool,
        model: state,
        ...(releaseProblem ? { releaseProblem } : {}),
        ...(served ? { served } : {}),
        ...(podMemoryMiB !== undefined ? { podMemoryMiB } : {}),
        desiredReplicas: replicas,
        ...(liveDeployment ? { deployment: liveDeployment } : {}),
        pods: poolPods,
        allPoolPods,
        nodes: nodes.list(),
        releases: knownReleases,
        now: now(),
      });
      const targetRelease =
        liveDeployment?.spec?.template?.metadata?.annotations?.[releaseAnnotations.configMap];
      if (served && targetRelease && findCondition(status.conditions, 'Progressing')?.reason === 'Complete') {
        await pruneReleases(pool, targetRelease);
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
        for (const type of ['ModelCurrent', 'Placed', 'Progressing', 'Degraded']) {
          const before = findCondition(cached.status?.conditions, type);
          const after = findCondition(status.conditions, type);
          if (!after || (before?.reason === after.reason && before?.status === after.status)) continue;
          // Events tell what happened: faults, recoveries and rollouts, not every first look.
          if (type === 'Degraded' && after.status === 'False') continue;
          if (type === 'Placed' && after.status === 'True' && before?.status !== 'False') continue;
          if (type === 'Progressing' && !served) continue;
          const warning =
            [
              'VersionRejected',
              'ModelNotValidated',
              'ModelNotFound',
              'RolloutStalled',
              'ReleaseSourceChanged',
            ].includes(after.reason) ||
            (type === 'Placed' && after.status === 'False') ||
            (type === 'Degraded' && after.status === 'True');
          recorder.record(pool, warning ? 'Warning' : 'Normal', after.reason, type, after.message);
        }
      }
      return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
    },
  });
}
