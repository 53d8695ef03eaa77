import type { z } from 'zod';
import type { KubeObject } from '../operator/kube/types.ts';
import { type CareQueueSpec, type CareQueueStatus, careQueueSpec, careQueueStatus } from './carequeue.ts';
import {
  type HealingPolicySpec,
  type HealingPolicyStatus,
  healingPolicySpec,
  healingPolicyStatus,
} from './healingpolicy.ts';
import {
  type InferencePoolSpec,
  type InferencePoolStatus,
  inferencePoolSpec,
  inferencePoolStatus,
} from './inferencepool.ts';
import {
  type TriageModelSpec,
  type TriageModelStatus,
  triageModelSpec,
  triageModelStatus,
} from './triagemodel.ts';

export const group = 'aurora.health';
export const version = 'v1alpha1';
export const apiVersion = `${group}/${version}`;

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description: string;
  priority?: number;
}

export interface KindDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  printerColumns: PrinterColumn[];
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath: string };
  /** A CEL rule on metadata.name, for kinds whose name becomes the name of children with stricter rules. */
  nameRule?: { rule: string; message: string };
}

const condition = (type: string, field: 'status' | 'reason' = 'status') =>
  `.status.conditions[?(@.type=="${type}")].${field}`;
const age: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since the object was created.',
};
const ready: PrinterColumn = {
  name: 'Ready',
  type: 'string',
  jsonPath: condition('Ready'),
  description: 'Whether the object is Ready.',
};
const reason: PrinterColumn = {
  name: 'Reason',
  type: 'string',
  jsonPath: condition('Ready', 'reason'),
  description: 'Why the object is or is not Ready.',
};

export const kinds: readonly KindDefinition[] = [
  {
    kind: 'TriageModel',
    plural: 'triagemodels',
    singular: 'triagemodel',
    shortNames: ['tm'],
    description:
      'TriageModel is an ONNX risk-classification model, pinned by digest, checked against its declared inputs and labels and against acceptance tests before anything serves it.',
    spec: triageModelSpec,
    status: triageModelStatus,
    printerColumns: [
      { name: 'Version', type: 'string', jsonPath: '.spec.version', description: 'The version declared.' },
      {
        name: 'Validated',
        type: 'string',
        jsonPath: '.status.validatedVersion',
        description: 'The version that passed.',
      },
      ready,
      reason,
      {
        name: 'Memory-MiB',
        type: 'number',
        jsonPath: '.status.measuredMemoryMiB',
        description: 'Measured session memory.',
      },
      {
        name: 'P99-ms',
        type: 'number',
        jsonPath: '.status.latency.p99Ms',
        description: 'Measured p99 latency.',
        priority: 1,
      },
      age,
    ],
  },
  {
    kind: 'InferencePool',
    plural: 'inferencepools',
    singular: 'inferencepool',
    shortNames: ['ip', 'ipool'],
    description:
      'InferencePool is the set of pods serving a TriageModel on Apple-silicon nodes that can hold it in unified memory, spread across machines, and moved to a new model version by a rolling update only once that version has passed acceptance.',
    spec: inferencePoolSpec,
    status: inferencePoolStatus,
    printerColumns: [
      {
        name: 'Model',
        type: 'string',
        jsonPath: '.spec.modelRef.name',
        description: 'The TriageModel served.',
      },
      {
        name: 'Serving',
        type: 'string',
        jsonPath: '.status.servedModel.version',
        description: 'The version served.',
      },
      {
        name: 'Desired',
        type: 'integer',
        jsonPath: '.status.desiredReplicas',
        description: 'Replicas the pool asks for (spec.replicas within min and max).',
      },
      {
        name: 'Ready-Pods',
        type: 'integer',
        jsonPath: '.status.readyReplicas',
        description: 'Pods ready to serve.',
      },
      {
        name: 'Canary',
        type: 'string',
        jsonPath: '.status.canary.phase',
        description: 'Canary phase (reserved: canaries are not acted on yet).',
        priority: 1,
      },
      {
        name: 'Placed',
        type: 'string',
        jsonPath: condition('Placed', 'reason'),
        description: 'Whether every pod found a node, or why not.',
        priority: 1,
      },
      ready,
      age,
    ],
    nameRule: {
      // The pool's name names its Service (a DNS-1035 label) and, with suffixes, its ReplicaSets and pods.
      rule: "self.metadata.name.size() <= 47 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
      message:
        'metadata.name must be at most 47 characters of lower-case letters, digits and -, starting with a letter: it names the pool Service and Deployment',
    },
    scale: {
      specReplicasPath: '.spec.replicas',
      statusReplicasPath: '.status.replicas',
      labelSelectorPath: '.status.selector',
    },
  },
  {
    kind: 'CareQueue',
    plural: 'carequeues',
    singular: 'carequeue',
    shortNames: ['cq'],
    description:
      'CareQueue is a patient queue in Redis, one stream per triage category; Aurora scales its consumers so no category breaks its maximum wait, and never scales in blind.',
    spec: careQueueSpec,
    status: careQueueStatus,
    printerColumns: [
      {
        name: 'Target',
        type: 'string',
        jsonPath: '.spec.scaleTargetRef.name',
        description: 'The consumers scaled.',
      },
      {
        name: 'Current',
        type: 'integer',
        jsonPath: '.status.currentReplicas',
        description: 'Consumers now.',
      },
      {
        name: 'Desired',
        type: 'integer',
        jsonPath: '.status.desiredReplicas',
        description: 'Consumers wanted.',
      },
      {
        name: 'Waiting',
        type: 'integer',
        jsonPath: '.status.waitingEntries',
        description: 'Entries waiting or in flight, all categories.',
      },
      {
        name: 'Waits-Met',
        type: 'string',
        jsonPath: condition('SLOMet'),
        description: 'Every category within its wait.',
      },
      {
        name: 'Breach',
        type: 'string',
        jsonPath: condition('SLOMet', 'reason'),
        description: 'Why the waits are or are not met.',
        priority: 1,
      },
      {
        name: 'Degraded',
        type: 'string',
        jsonPath: condition('Degraded', 'reason'),
        description: 'Why Aurora cannot see or act on the queue, when it cannot.',
        priority: 1,
      },
      ready,
      age,
    ],
  },
  {
    kind: 'HealingPolicy',
    plural: 'healingpolicies',
    singular: 'healingpolicy',
    shortNames: ['hp', 'heal'],
    description:
      'HealingPolicy finds failing services, works out why, and remediates in escalating steps within budgets, with an audit trail in PostgreSQL written before every action.',
    spec: healingPolicySpec,
    status: healingPolicyStatus,
    printerColumns: [
      { name: 'Mode', type: 'string', jsonPath: '.spec.mode', description: 'Enforce or DryRun.' },
      { name: 'Tier', type: 'string', jsonPath: '.spec.tier', description: 'Criticality tier.' },
      {
        name: 'Watched',
        type: 'integer',
        jsonPath: '.status.watchedTargets',
        description: 'Workloads watched.',
      },
      {
        name: 'Unhealthy',
        type: 'integer',
        jsonPath: '.status.unhealthyCount',
        description: 'Targets found failing now.',
      },
      {
        name: 'Budget',
        type: 'integer',
        jsonPath: '.status.budgetRemaining',
        description: 'Actions left in the window.',
      },
      {
        name: 'Healing',
        type: 'string',
        jsonPath: condition('Healing', 'reason'),
        description: 'What healing is doing: Idle, Remediating, AwaitingApproval, Held...',
      },
      ready,
      age,
    ],
  },
];

type Resource<Spec, Status> = KubeObject & { spec: Spec; status?: Status };
export type TriageModel = Resource<TriageModelSpec, TriageModelStatus>;
export type InferencePool = Resource<InferencePoolSpec, InferencePoolStatus>;
export type CareQueue = Resource<CareQueueSpec, CareQueueStatus>;
export type HealingPolicy = Resource<HealingPolicySpec, HealingPolicyStatus>;
