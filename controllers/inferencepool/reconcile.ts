import { Gauge } from 'prom-client';
import { inferencePoolSpec } from '../../crds/inferencepool.ts';
import { apiVersion, type InferencePool, type TriageModel } from '../../crds/kinds.ts';
import {
  managedSelector,
  poolLabel,
  releaseAnnotations,
  releaseLabel,
  rollbackAnnotations,
} from '../../crds/labels.ts';
import type { ValidatorClient } from '../../model/validator-client.ts';
import { createChildApplier } from '../../operator/apply.ts';
import { findCondition } from '../../operator/conditions.ts';
import { meaningfulChange } from '../../operator/controller.ts';
import { addKindController } from '../../operator/kind-controller.ts';
import type { Manager } from '../../operator/manager.ts';
import { watch } from '../../operator/sources.ts';
import { careQueueInformer, careQueueTargetIndex, careQueueTargetKey } from '../../views/carequeue.ts';
import type { DeploymentView } from '../../views/deployment.ts';
import { nodeInformer, nodePlacementEvent } from '../../views/node.ts';
import { type PodView, podView } from '../../views/pod.ts';
import {
  consumedQueue,
  desiredDeployment,
  desiredDisruptionBudget,
  desiredNetworkPolicy,
  desiredReplicas,
  desiredService,
  poolPodMemoryMiB,
  poolRolloutStrategy,
} from './desired.ts';
import { chooseRelease, type ModelRelease, modelState, releaseName } from './release.ts';
import { createReleaseStore, withoutFile } from './release-store.ts';
import { inferencePoolEvents, inferencePoolStatus, nextTimedChangeMs, placementByNode } from './status.ts';

/**
 * The InferencePool controller: for the version of its TriageModel that passed acceptance, a release
 * (an immutable ConfigMap with the file and contract), a Deployment of triage servers sized by the
 * model's measured memory and placed on Apple silicon, a Service and a PodDisruptionBudget. A version
 * that has not passed never reaches the Deployment, so the pods keep serving the last one that did.
 */
export function registerInferencePoolController(
  manager: Manager,
  options: { image: string; validator: ValidatorClient; workers?: number },
): void {
  const pools = manager.informer<InferencePool>(apiVersion, 'InferencePool', {
    indexers: { model: (p) => [`${p.metadata.namespace}/${p.spec?.modelRef?.name}`] },
  });
  const models = manager.informer<TriageModel>(apiVersion, 'TriageModel');
  // A CareQueue that targets a pool makes its triage servers the queue's consumers.
  const queues = careQueueInformer(manager);
  const deployments = manager.informer<DeploymentView>('apps/v1', 'Deployment', {
    labelSelector: managedSelector,
  });
  const services = manager.informer('v1', 'Service', { labelSelector: managedSelector });
  const budgets = manager.informer('policy/v1', 'PodDisruptionBudget', { labelSelector: managedSelector });
  const networkPolicies = manager.informer('networking.k8s.io/v1', 'NetworkPolicy', {
    labelSelector: managedSelector,
  });
  const releaseConfigMaps = manager.informer('v1', 'ConfigMap', {
    labelSelector: releaseLabel,
    transform: withoutFile,
  });
  const pods = manager.informer<PodView>('v1', 'Pod', {
    labelSelector: poolLabel,
    transform: podView,
    indexers: {
      pool: (p) => [`${p.metadata.namespace}/${p.pod.pool}`],
      node: (p) => (p.pod.nodeName ? [p.pod.nodeName] : []),
    },
  });
  const nodes = nodeInformer(manager);
  const releases = createReleaseStore({
    client: manager.client,
    releases: releaseConfigMaps,
    validator: options.validator,
  });
  const children = createChildApplier(manager.client);
  const podGauge = new Gauge({
    name: 'aurora_inferencepool_pods',
    help: 'Pods of each pool: desired, ready, and unplaced (waiting for unified memory or a node)',
    labelNames: ['namespace', 'pool', 'state'],
    registers: [manager.metrics.registry],
  });
  // Read from the cache when scraped, so a pod that moves or goes leaves no series behind; the leader's
  // alone, as a standby's warm cache would report every pod twice.
  const placement = () => (manager.controllersRunning() ? placementByNode(pods.list()) : []);
  new Gauge({
    name: 'aurora_inferencepool_node_pods',
    help: 'Live pods of each pool bound to each node',
    labelNames: ['namespace', 'pool', 'node'],
    registers: [manager.metrics.registry],
    collect() {
      this.reset();
      for (const r of placement()) this.set({ namespace: r.namespace, pool: r.pool, node: r.node }, r.pods);
    },
  });
  new Gauge({
    name: 'aurora_inferencepool_unified_memory_mib',
    help: 'Unified memory the live pods of each pool request on each node, in MiB',
    labelNames: ['namespace', 'pool', 'node'],
    registers: [manager.metrics.registry],
    collect() {
      this.reset();
      for (const r of placement())
        this.set({ namespace: r.namespace, pool: r.pool, node: r.node }, r.unifiedMemoryMiB);
    },
  });
  // The children named after the pool, whose applied intent the applier remembers.
  const poolChildKinds = [
    ['apps/v1', 'Deployment'],
    ['v1', 'Service'],
    ['policy/v1', 'PodDisruptionBudget'],
    ['networking.k8s.io/v1', 'NetworkPolicy'],
  ] as const;
  const poolKey = (p: PodView) => `${p.metadata.namespace}/${p.pod.pool}`;

  addKindController(manager, {
    name: 'inferencepool',
    informer: pools,
    spec: inferencePoolSpec,
    events: inferencePoolEvents,
    owns: [deployments, services, budgets, networkPolicies, releaseConfigMaps],
    sources: [
      watch(models, (m) =>
        pools
          .byIndex('model', `${m.metadata.namespace}/${m.metadata.name}`)
          .map((p) => `${p.metadata.namespace}/${p.metadata.name}`),
      ),
      watch(pods, (p) => [poolKey(p)]),
      // Only a queue's spec and metadata matter to its pool: its status, rewritten as the queue is
      // looked at, wakes nothing.
      watch(
        queues,
        (q) =>
          q.spec?.scaleTargetRef?.kind === 'InferencePool'
            ? [`${q.metadata.namespace}/${q.spec.scaleTargetRef.name}`]
            : [],
        meaningfulChange,
      ),
      // A node change matters to the pools with pods on it, and to pools with pods waiting for a node.
      watch(
        nodes,
        (node) =>
          new Set(
            [
              ...pods.byIndex('node', node.metadata.name),
              ...pods.list().filter((p) => p.pod.unschedulable),
            ].map(poolKey),
          ),
        nodePlacementEvent,
      ),
    ],
    ...(options.workers ? { workers: options.workers } : {}),
    forget(key) {
      const [namespace = '', pool = ''] = key.split('/');
      for (const state of ['desired', 'ready', 'unplaced']) podGauge.remove({ namespace, pool, state });
      for (const [apiVersion, kind] of poolChildKinds)
        children.forget({ apiVersion, kind, metadata: { name: pool, namespace } });
    },
    async reconcile(ctx, pool) {
      const namespace = pool.metadata.namespace ?? '';
      const model = models.get(`${namespace}/${pool.spec.modelRef.name}`);
      const state = modelState(pool.spec.modelRef.name, model);
      const deployment = deployments.get(ctx.key);
      const currentRelease =
        deployment?.spec?.template?.metadata?.annotations?.[releaseAnnotations.configMap];
      const knownReleases = releases.known(pool);

      let served: ModelRelease | undefined;
      let requeueAfterMs: number | undefined;
      let releaseProblem: string | undefined;
      if (state.kind === 'validated' && model) {
        const ensured = await releases.ensure(pool, model, state.release, ctx.signal);
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
      // A HealingPolicy's rollback: the release served before, while the one it rolled back from is newest.
      const choice = chooseRelease({
        ...(served ? { newest: releaseName(pool.metadata.name, served) } : {}),
        known: new Set(knownReleases.keys()),
        rollback: {
          ...(pool.metadata.annotations?.[rollbackAnnotations.to]
            ? { to: pool.metadata.annotations[rollbackAnnotations.to] }
            : {}),
          ...(pool.metadata.annotations?.[rollbackAnnotations.from]
            ? { from: pool.metadata.annotations[rollbackAnnotations.from] }
            : {}),
        },
      });
      if (choice.rolledBack && choice.name) served = knownReleases.get(choice.name) ?? served;
      // Nothing newer that passed: keep what the pods serve now.
      served ??= currentRelease ? knownReleases.get(currentRelease) : undefined;

      const queue = consumedQueue(
        queues.byIndex(
          careQueueTargetIndex,
          careQueueTargetKey(namespace ?? '', 'InferencePool', pool.metadata.name),
        ),
      );
      const replicas = desiredReplicas(pool.spec);
      const podMemoryMiB = served ? poolPodMemoryMiB(pool.spec, served) : undefined;
      let liveDeployment: DeploymentView | undefined = deployment;
      if (served && podMemoryMiB !== undefined) {
        const strategy = poolRolloutStrategy({
          pool,
          served,
          image: options.image,
          podMemoryMiB,
          deployment,
          nodes: nodes.list(),
          allPoolPods: pods.list(),
          poolPods: pods.byIndex('pool', ctx.key),
          ...(queue ? { queue } : {}),
        });
        liveDeployment =
          (await children.apply(
            desiredDeployment(pool, served, options.image, strategy, queue),
            deployment,
          )) ?? deployment;
        const target = releaseName(pool.metadata.name, served);
        if (currentRelease && currentRelease !== target)
          await releases.markLastServed(namespace, currentRelease, ctx.now());
        await children.apply(desiredService(pool), services.get(ctx.key));
        await children.apply(desiredDisruptionBudget(pool), budgets.get(ctx.key));
        await children.apply(desiredNetworkPolicy(pool), networkPolicies.get(ctx.key));
      }
      // Read together, after the writes' awaits: taken either side of an await, this pool's pods and
      // every pool's pods could disagree, and a pod counted ready would be missing from its node's usage.
      const allPoolPods = pods.list();
      const poolPods = pods.byIndex('pool', ctx.key);
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
        now: ctx.now(),
      });
      const targetRelease =
        liveDeployment?.spec?.template?.metadata?.annotations?.[releaseAnnotations.configMap];
      if (served && targetRelease && findCondition(status.conditions, 'Progressing')?.reason === 'Complete') {
        await releases.prune(pool, targetRelease);
      }
      const labels = { namespace, pool: pool.metadata.name };
      podGauge.set({ ...labels, state: 'desired' }, replicas);
      podGauge.set({ ...labels, state: 'ready' }, status.readyReplicas ?? 0);
      podGauge.set(
        { ...labels, state: 'unplaced' },
        poolPods.filter((p) => p.pod.unschedulable !== undefined && !p.pod.terminating).length,
      );
      const timed = nextTimedChangeMs(poolPods, ctx.now());
      const lookAgainMs = [requeueAfterMs, timed].filter((ms): ms is number => ms !== undefined);
      return { status, ...(lookAgainMs.length > 0 ? { requeueAfterMs: Math.min(...lookAgainMs) } : {}) };
    },
  });
}
