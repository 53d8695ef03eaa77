import { createHash } from 'node:crypto';
import { careQueueSpec } from '../../crds/carequeue.ts';
import type { InferencePoolSpec } from '../../crds/inferencepool.ts';
import type { CareQueue, InferencePool } from '../../crds/kinds.ts';
import {
  managedBy,
  poolLabel,
  releaseAnnotations,
  releaseLabel,
  unifiedMemoryResource,
} from '../../crds/labels.ts';
import { secretUrlName } from '../../model/source.ts';
import { controllerReference } from '../../operator/apply.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { quantityToMiB } from '../../operator/quantity.ts';
import { allowedNodes, appleRequirements, selectorRequirements } from '../../placement/nodes.ts';
import { podUnifiedMemoryMiB, unifiedMemoryUsage } from '../../placement/unified-memory.ts';
import { type ConsumedQueue, consumerEnv, consumerVolumes } from '../../queue/contract.ts';
import type { DeploymentView, RollingUpdate } from '../../views/deployment.ts';
import type { NodeView } from '../../views/node.ts';
import type { PodView } from '../../views/pod.ts';
import { type ModelRelease, releaseName } from './release.ts';

export const modelMountPath = '/var/run/aurora/model';
const containerName = 'triage-server';
const defaultCpu = '500m';

/** The immutable ConfigMap that records a release, with the model file unless the pod downloads it. */
export function desiredRelease(
  pool: InferencePool,
  release: ModelRelease,
  file: Uint8Array | undefined,
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: releaseName(pool.metadata.name, release),
      namespace: pool.metadata.namespace,
      labels: { ...managedBy, [releaseLabel]: pool.metadata.name },
      annotations: {
        [releaseAnnotations.version]: release.version,
        [releaseAnnotations.digest]: `sha256:${release.digest}`,
      },
      ownerReferences: [controllerReference(pool)],
    },
    immutable: true,
    data: { 'release.json': JSON.stringify(release) },
    ...(file ? { binaryData: { 'model.onnx': Buffer.from(file).toString('base64') } } : {}),
  };
}

/** Replicas the pool asks for: spec.replicas (set by hand, a CareQueue or an HPA) within min and max. */
export function desiredReplicas(spec: InferencePoolSpec): number {
  const wanted = spec.replicas ?? spec.minReplicas;
  return Math.min(spec.maxReplicas, Math.max(spec.minReplicas, wanted));
}

/** Unified memory each pod takes: resources.memory when set, else the measured model plus headroom. */
export function poolPodMemoryMiB(spec: InferencePoolSpec, release: ModelRelease): number {
  if (spec.resources.memory) return quantityToMiB(spec.resources.memory);
  return podUnifiedMemoryMiB(release.measuredMemoryMiB, spec.resources.memoryHeadroomPercent);
}

function nodeAffinity(placement: InferencePoolSpec['placement']) {
  const selector = selectorRequirements(placement);
  const apple = appleRequirements(placement);
  if (placement.appleSilicon === 'Required') {
    return {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [...apple, ...selector] }],
      },
    };
  }
  return {
    ...(selector.length
      ? {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [{ matchExpressions: selector }],
          },
        }
      : {}),
    preferredDuringSchedulingIgnoredDuringExecution: [
      { weight: 100, preference: { matchExpressions: apple } },
    ],
  };
}

/** Labels every child and pod of the pool carries; the selector uses only the pool label. */
export function poolLabels(pool: InferencePool): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'triage-server',
    'app.kubernetes.io/instance': pool.metadata.name,
    'app.kubernetes.io/component': 'inference',
    ...managedBy,
    [poolLabel]: pool.metadata.name,
  };
}

/** Name, labels and controller reference every child of the pool (Deployment, Service, PDB) carries. */
function childMetadata(pool: InferencePool) {
  return {
    name: pool.metadata.name,
    namespace: pool.metadata.namespace,
    labels: poolLabels(pool),
    ownerReferences: [controllerReference(pool)],
  };
}

export const poolSelector = (pool: string) => `${poolLabel}=${pool}`;

const surge: RollingUpdate = { maxSurge: 1, maxUnavailable: 0 };
const oneAtATime: RollingUpdate = { maxSurge: 0, maxUnavailable: 1 };

/**
 * How a new pod template replaces the old. A pod is added before one is removed, so the pool never
 * serves below its count; but on Macs too full for one more pod that rollout could never finish, so a
 * pool of two or more replaces one pod at a time instead (the PodDisruptionBudget allows one away).
 * A single pod is never taken away first: a full node blocks its rollout, and status says so. The
 * choice is made when the template changes and kept while the rollout runs, unless the surge pod turns
 * out to have no room after all; between rollouts the strategy is left alone, so nothing churns.
 */
export function rolloutStrategy(o: {
  replicas: number;
  /** Whether an allowed node has unified memory free for one more pod (true when pods reserve none). */
  roomForOneMore: boolean;
  live: RollingUpdate | undefined;
  templateChanged: boolean;
  /** A pod of the pool waits for unified memory. */
  surgeBlocked: boolean;
}): RollingUpdate {
  if (o.replicas < 2) return surge;
  if (o.templateChanged || !o.live) return o.roomForOneMore ? surge : oneAtATime;
  if (o.surgeBlocked && o.live.maxUnavailable === 0) return oneAtATime;
  return o.live;
}

/**
 * The rollout strategy for the pool's Deployment, from what the cluster shows: whether an allowed node
 * has room for one more pod, whether the template is changing, and whether a surge pod waits for
 * unified memory (pods of two templates, one of them unschedulable for want of it).
 */
export function poolRolloutStrategy(o: {
  pool: InferencePool & { spec: InferencePoolSpec };
  served: ModelRelease;
  image: string;
  podMemoryMiB: number;
  deployment: DeploymentView | undefined;
  nodes: readonly NodeView[];
  /** Every pool's pods, for the memory already taken on each node. */
  allPoolPods: readonly PodView[];
  poolPods: readonly PodView[];
  queue?: ConsumedQueue;
}): RollingUpdate {
  const { spec } = o.pool;
  const reservesUnifiedMemory = spec.placement.appleSilicon === 'Required';
  const usage = unifiedMemoryUsage(allowedNodes(spec, o.nodes), o.allPoolPods);
  const poolPodsNow = o.poolPods.filter((p) => !p.pod.terminating);
  const draft = desiredDeployment(o.pool, o.served, o.image, undefined, o.queue);
  return rolloutStrategy({
    replicas: desiredReplicas(spec),
    roomForOneMore:
      !reservesUnifiedMemory ||
      [...usage.values()].some((u) => u.allocatableMiB - u.usedMiB >= o.podMemoryMiB),
    live: o.deployment?.spec?.strategy?.rollingUpdate,
    templateChanged:
      o.deployment?.metadata.annotations?.[templateHashAnnotation] !==
      draft.metadata.annotations?.[templateHashAnnotation],
    surgeBlocked:
      reservesUnifiedMemory &&
      new Set(poolPodsNow.map((p) => p.pod.templateHash)).size > 1 &&
      poolPodsNow.some((p) => p.pod.unschedulable?.includes(`Insufficient ${unifiedMemoryResource}`)),
  });
}

/**
 * The queue a pool's pods consume: the oldest valid CareQueue that targets it (a second one is refused
 * by its own status, since one set of consumers cannot serve two queues' waits).
 */
export function consumedQueue(targeting: readonly CareQueue[]): ConsumedQueue | undefined {
  const valid = targeting
    .filter((q) => !q.metadata.deletionTimestamp)
    .map((q) => ({ q, parsed: careQueueSpec.safeParse(q.spec) }))
    .filter((x) => x.parsed.success)
    .sort(
      (a, b) =>
        (a.q.metadata.creationTimestamp ?? '').localeCompare(b.q.metadata.creationTimestamp ?? '') ||
        a.q.metadata.name.localeCompare(b.q.metadata.name),
    );
  const first = valid[0];
  if (!first?.parsed.success) return undefined;
  return {
    namespace: first.q.metadata.namespace ?? '',
    name: first.q.metadata.name,
    spec: first.parsed.data,
  };
}

/** Annotation with a hash of the pod template Aurora wants, so a template change is seen as such. */
export const templateHashAnnotation = 'aurora.health/template-hash';

/**
 * The Deployment of triage servers for a release. Pods request the model's unified memory as an
 * extended resource so the scheduler packs them by it; only Required placement can ask for it, since
 * only profiled Apple nodes offer it.
 */
export function desiredDeployment(
  pool: InferencePool & { spec: InferencePoolSpec },
  release: ModelRelease,
  defaultImage: string,
  strategy: RollingUpdate = { maxSurge: 1, maxUnavailable: 0 },
  /** The CareQueue whose streams the pods consume, when one targets the pool. */
  queue?: ConsumedQueue,
): KubeObject {
  const image = pool.spec.server.image ?? defaultImage;
  const { spec } = pool;
  const name = pool.metadata.name;
  const memoryMiB = poolPodMemoryMiB(spec, release);
  const unified =
    spec.placement.appleSilicon === 'Required' ? { [unifiedMemoryResource]: String(memoryMiB) } : {};
  const modelFile = `${modelMountPath}/model.onnx`;
  const env = [
    ...(release.http
      ? [
          // A URL that carries a token stays in its Secret: the pod reads it from there.
          release.http.urlSecretRef
            ? { name: 'AURORA_MODEL_URL', valueFrom: { secretKeyRef: release.http.urlSecretRef } }
            : { name: 'AURORA_MODEL_URL', value: release.http.url },
          ...(release.http.urlSecretRef
            ? [
                {
                  name: 'AURORA_MODEL_URL_SHOWN_AS',
                  value: secretUrlName(pool.metadata.namespace ?? '', release.http.urlSecretRef),
                },
              ]
            : []),
          { name: 'AURORA_MODEL_DOWNLOAD_TIMEOUT_SECONDS', value: String(release.http.timeoutSeconds) },
          { name: 'AURORA_MODEL_MAX_SIZE_MIB', value: String(release.http.maxSizeMiB) },
        ]
      : [{ name: 'AURORA_MODEL_FILE', value: modelFile }]),
    { name: 'AURORA_MODEL_SHA256', value: release.digest },
    { name: 'AURORA_MODEL_SPEC', value: JSON.stringify(release.contract) },
    { name: 'AURORA_PORT', value: String(spec.server.port) },
    { name: 'AURORA_MAX_BATCH_SIZE', value: String(spec.server.maxBatchSize) },
    { name: 'AURORA_BATCH_WINDOW_MS', value: String(spec.server.batchWindowMs) },
    ...(queue ? consumerEnv(queue) : []),
  ];
  const queueFiles = queue ? consumerVolumes(queue) : { volumes: [], mounts: [] };
  // A download is tried again with backoff until it succeeds; the startup probe waits for a few tries.
  const startupSeconds = release.http ? 120 + 3 * release.http.timeoutSeconds : 300;
  const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
    httpGet: { path, port: 'http' },
    periodSeconds,
    failureThreshold,
    timeoutSeconds: 2,
  });
  const podSpec = {
    affinity: { nodeAffinity: nodeAffinity(spec.placement) },
    topologySpreadConstraints: [
      {
        maxSkew: spec.placement.spread.maxSkew,
        topologyKey: 'kubernetes.io/hostname',
        whenUnsatisfiable: spec.placement.spread.whenUnsatisfiable,
        labelSelector: { matchLabels: { [poolLabel]: name } },
        matchLabelKeys: ['pod-template-hash'],
      },
    ],
    ...(spec.placement.tolerations?.length ? { tolerations: spec.placement.tolerations } : {}),
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    terminationGracePeriodSeconds: 30,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 1000,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: [
      {
        name: containerName,
        image,
        args: ['workloads/triage-server/main.ts'],
        ports: [{ name: 'http', containerPort: spec.server.port, protocol: 'TCP' }],
        env,
        resources: {
          requests: { cpu: spec.resources.cpu ?? defaultCpu, memory: `${memoryMiB}Mi`, ...unified },
          limits: { memory: `${memoryMiB}Mi`, ...unified },
        },
        startupProbe: probe('/readyz', 2, Math.ceil(startupSeconds / 2)),
        readinessProbe: probe('/readyz', 5, 3),
        livenessProbe: probe('/healthz', 10, 3),
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        },
        volumeMounts: [
          ...(release.http ? [] : [{ name: 'model', mountPath: modelMountPath, readOnly: true }]),
          { name: 'tmp', mountPath: '/tmp' },
          ...queueFiles.mounts,
        ],
      },
    ],
    // A file downloaded over HTTP is held in memory by the server, so it needs no volume.
    volumes: [
      ...(release.http
        ? []
        : [
            {
              name: 'model',
              configMap: {
                name: releaseName(name, release),
                items: [{ key: 'model.onnx', path: 'model.onnx' }],
              },
            },
          ]),
      { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
      ...queueFiles.volumes,
    ],
  };
  const template = {
    metadata: {
      labels: poolLabels(pool),
      annotations: {
        [releaseAnnotations.configMap]: releaseName(name, release),
        [releaseAnnotations.version]: release.version,
        [releaseAnnotations.digest]: `sha256:${release.digest}`,
      },
    },
    spec: podSpec,
  };
  const hash = createHash('sha256').update(JSON.stringify(template)).digest('hex').slice(0, 16);
  const metadata = childMetadata(pool);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { ...metadata, annotations: { [templateHashAnnotation]: hash } },
    spec: {
      replicas: desiredReplicas(spec),
      revisionHistoryLimit: 5,
      progressDeadlineSeconds: 600,
      selector: { matchLabels: { [poolLabel]: name } },
      strategy: { type: 'RollingUpdate', rollingUpdate: strategy },
      template,
    },
  };
}

/** The Service in front of the pool's ready pods. */
export function desiredService(pool: InferencePool & { spec: InferencePoolSpec }): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: childMetadata(pool),
    spec: {
      type: 'ClusterIP',
      selector: { [poolLabel]: pool.metadata.name },
      ports: [{ name: 'http', port: pool.spec.server.port, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

/**
 * At most one pod of the pool away at a time for voluntary disruptions (drains). It never blocks a drain
 * forever: pods that are not ready may always be evicted.
 */
export function desiredDisruptionBudget(pool: InferencePool): KubeObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: childMetadata(pool),
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: { [poolLabel]: pool.metadata.name } },
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
    },
  };
}

/**
 * Who may call the triage servers: pods of the pool's own namespace and of the namespaces it names,
 * on the server port only. Patient data in requests reaches no one else's pods.
 */
export function desiredNetworkPolicy(pool: InferencePool & { spec: InferencePoolSpec }): KubeObject {
  const { allowedNamespaces } = pool.spec.server;
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: childMetadata(pool),
    spec: {
      podSelector: { matchLabels: { [poolLabel]: pool.metadata.name } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [
            { podSelector: {} },
            ...(allowedNamespaces.length > 0
              ? [
                  {
                    namespaceSelector: {
                      matchExpressions: [
                        {
                          key: 'kubernetes.io/metadata.name',
                          operator: 'In',
                          values: [...allowedNamespaces],
                        },
                      ],
                    },
                  },
                ]
              : []),
          ],
          ports: [{ protocol: 'TCP', port: pool.spec.server.port }],
        },
      ],
    },
  };
}
