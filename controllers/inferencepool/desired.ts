import { createHash } from 'node:crypto';
import type { InferencePoolSpec } from '../../crds/inferencepool.ts';
import type { InferencePool, TriageModel } from '../../crds/kinds.ts';
import { nodeLabels, unifiedMemoryResource } from '../../crds/node-labels.ts';
import type { TriageModelSpec } from '../../crds/triagemodel.ts';
import { controllerReference } from '../../operator/apply.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { quantityToMiB } from '../../operator/quantity.ts';
import { podUnifiedMemoryMiB } from './memory.ts';

export const poolLabel = 'aurora.health/pool';
/** Marks a pool's release ConfigMaps; only those owned by the pool are ever reused or pruned. */
export const releaseLabel = 'aurora.health/release-of';
export const managedBy = { 'app.kubernetes.io/managed-by': 'aurora-operator' } as const;
/** Pod-template annotations that say which model release a pod serves. */
export const releaseAnnotations = {
  configMap: 'aurora.health/release',
  version: 'aurora.health/model-version',
  digest: 'aurora.health/model-digest',
} as const;
export const modelMountPath = '/var/run/aurora/model';
const containerName = 'triage-server';
const defaultCpu = '500m';

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
  http?: { url: string; sha256: string; timeoutSeconds: number; maxSizeMiB: number };
}

/** The largest model file a release ConfigMap carries (ConfigMaps hold 1 MiB in all). */
export const maxReleasedFileBytes = 960 * 1024;

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
    (status.sizeBytes ?? Number.POSITIVE_INFINITY) <= maxReleasedFileBytes ? undefined : spec.source.http;
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
              url: http.url,
              sha256: http.sha256,
              timeoutSeconds: http.timeoutSeconds,
              maxSizeMiB: http.maxSizeMiB,
            },
          }
        : {}),
    },
  };
}

/** The release ConfigMap's name: the pool and a hash of what is served (file and contract). */
export function releaseName(pool: string, release: ModelRelease): string {
  const id = createHash('sha256')
    .update(JSON.stringify([release.digest, release.contract, release.http ?? null]))
    .digest('hex')
    .slice(0, 10);
  return `${pool}-model-${id}`;
}

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

interface NodeSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';
  values?: string[];
}

/** The Apple-silicon part of placement: the profile labels a node must carry. */
export function appleRequirements(placement: InferencePoolSpec['placement']): NodeSelectorRequirement[] {
  const requirements: NodeSelectorRequirement[] = [
    { key: nodeLabels.appleSilicon, operator: 'In', values: ['true'] },
  ];
  if (placement.chips?.length) {
    requirements.push({ key: nodeLabels.chip, operator: 'In', values: [...placement.chips] });
  }
  if (placement.minUnifiedMemoryGiB !== undefined) {
    requirements.push({
      key: nodeLabels.unifiedMemoryGiB,
      operator: 'Gt',
      values: [String(placement.minUnifiedMemoryGiB - 1)],
    });
  }
  return requirements;
}

function nodeAffinity(placement: InferencePoolSpec['placement']) {
  const selector: NodeSelectorRequirement[] = Object.entries(placement.nodeSelector ?? {}).map(
    ([key, value]) => ({ key, operator: 'In', values: [value] }),
  );
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

/**
 * The Deployment of triage servers for a release. Pods request the model's unified memory as an
 * extended resource so the scheduler packs them by it; only Required placement can ask for it, since
 * only profiled Apple nodes offer it.
 */
export type RolloutStrategy = { maxSurge: number; maxUnavailable: number };
const surge: RolloutStrategy = { maxSurge: 1, maxUnavailable: 0 };
const oneAtATime: RolloutStrategy = { maxSurge: 0, maxUnavailable: 1 };

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
  live: RolloutStrategy | undefined;
  templateChanged: boolean;
  /** A pod of the pool waits for unified memory. */
  surgeBlocked: boolean;
}): RolloutStrategy {
  if (o.replicas < 2) return surge;
  if (o.templateChanged || !o.live) return o.roomForOneMore ? surge : oneAtATime;
  if (o.surgeBlocked && o.live.maxUnavailable === 0) return oneAtATime;
  return o.live;
}

/** Annotation with a hash of the pod template Aurora wants, so a template change is seen as such. */
export const templateHashAnnotation = 'aurora.health/template-hash';

export function desiredDeployment(
  pool: InferencePool & { spec: InferencePoolSpec },
  release: ModelRelease,
  defaultImage: string,
  strategy: RolloutStrategy = { maxSurge: 1, maxUnavailable: 0 },
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
          { name: 'AURORA_MODEL_URL', value: release.http.url },
          { name: 'AURORA_MODEL_DOWNLOAD_TIMEOUT_SECONDS', value: String(release.http.timeoutSeconds) },
          { name: 'AURORA_MODEL_MAX_SIZE_MIB', value: String(release.http.maxSizeMiB) },
        ]
      : [{ name: 'AURORA_MODEL_FILE', value: modelFile }]),
    { name: 'AURORA_MODEL_SHA256', value: release.digest },
    { name: 'AURORA_MODEL_SPEC', value: JSON.stringify(release.contract) },
    { name: 'AURORA_PORT', value: String(spec.server.port) },
    { name: 'AURORA_MAX_BATCH_SIZE', value: String(spec.server.maxBatchSize) },
    { name: 'AURORA_BATCH_WINDOW_MS', value: String(spec.server.batchWindowMs) },
  ];
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
