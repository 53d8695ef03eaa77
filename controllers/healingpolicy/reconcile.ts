import { Counter, Gauge } from 'prom-client';
import { healingPolicySpec, remediationActions } from '../../crds/healingpolicy.ts';
import { apiVersion, type HealingPolicy, type InferencePool } from '../../crds/kinds.ts';
import { meaningfulChange } from '../../operator/controller.ts';
import { failpoint } from '../../operator/failpoints.ts';
import { addKindController } from '../../operator/kind-controller.ts';
import { createSecretKeyCache } from '../../operator/kube/secrets.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { Manager } from '../../operator/manager.ts';
import { changedBeyondVersion, watch } from '../../operator/sources.ts';
import {
  type AuditEntry,
  AuditRoleError,
  type AuditRow,
  type AuditTarget,
  type AuditTrail,
  openAuditTrail,
} from '../../state/audit.ts';
import { type NodeView, nodeInformer, nodeIsReady } from '../../views/node.ts';
import { deploymentInformer, statefulSetInformer, type WorkloadView } from '../../views/workload.ts';
import {
  type ActionParams,
  actionTookEffect,
  healingFieldManager,
  performAction,
  targetRef,
} from './actions.ts';
import { type DetectorMemory, detect, emptyMemory, type TargetSnapshot } from './detect.ts';
import { type Action, type Diagnosis, diagnose, type RevisionInfo } from './diagnose.ts';
import { isStorm, type PlannedAction, planHealing, type TargetInput, trailState } from './ladder.ts';
import {
  type HealthPod,
  healthPod,
  podsThatCount,
  type RevisionObject,
  revisionObject,
  revisionsOf,
  selectorMatches,
} from './observe.ts';
import { type QueryResult, queryPrometheus, readingFor } from './prometheus.ts';
import { type AuditFault, healingPolicyEvents, healingPolicyStatus } from './status.ts';

/** Labels and annotations people put on targets. */
export const healingDisabledLabel = 'aurora.health/healing';
export const approveAnnotation = 'aurora.health/approve';
/** The most replicas ScaleOut may set on a Deployment or StatefulSet (a pool has spec.maxReplicas). */
export const maxReplicasAnnotation = 'aurora.health/max-replicas';

/** How often a policy checks its targets when nothing wakes it sooner. */
export const checkIntervalMs = 5_000;
/** A Secret's URL is read again after this long. */
const secretTtlMs = 30_000;
/** How far back the trail is read at start (the longest window a guardrail looks at is a day). */
const historyMs = 86_400_000 + 3_600_000;

const ownerIndex = 'owner';
const byOwner = (o: { metadata: KubeObject['metadata'] }, owner: string | undefined) =>
  owner ? [`${o.metadata.namespace}/${owner}`] : [];

interface PolicyMemory {
  trailKey?: string;
  rows?: AuditRow[];
  detectors: Map<string, DetectorMemory>;
  /** Since when each target has been healthy without a break. */
  healthySince: Map<string, number>;
  /** Prometheus's last answer, reused within a check interval. */
  metric?: { asked: string; atMs: number; result: QueryResult };
}

/**
 * How often a quiet policy's audit database is looked at (shared by the policies that use it), and how
 * often while it does not answer, so its return shows as soon.
 */
const auditCheckMs = 10_000;
const auditRetryMs = 2_000;

interface AuditConnection {
  trail: AuditTrail;
  migrated: boolean;
  /** When a quiet policy last looked at the database (ms), whether a look is under way, what it found. */
  checkedAtMs: number;
  probing: boolean;
  unreachable?: unknown;
  /** The policies (memory keys) that use it: closed when the last one goes. */
  users: Set<string>;
}

type Target = {
  kind: 'Deployment' | 'StatefulSet' | 'InferencePool';
  object: KubeObject & { spec?: Record<string, unknown> };
};

/**
 * The HealingPolicy controller: every few seconds (and whenever a watched pod, workload or node changes)
 * it runs the detectors over each watched target, diagnoses what fails, and climbs the ladder within
 * the guardrails, writing each intent to the audit trail before it acts and each outcome after.
 */
export function registerHealingPolicyController(
  manager: Manager,
  options: {
    /** Namespaces never touched: the operator's own and kube-system. */
    protectedNamespaces: readonly string[];
    /** The PostgreSQL schema of the audit trail in each policy's database. */
    auditSchema?: string;
    identity?: string;
    checkIntervalMs?: number;
  },
): void {
  const interval = options.checkIntervalMs ?? checkIntervalMs;
  const protectedNamespaces = new Set(['kube-system', ...options.protectedNamespaces]);
  const identity = options.identity ?? 'aurora-operator';
  const policies = manager.informer<HealingPolicy>(apiVersion, 'HealingPolicy', {
    indexers: {
      namespace: (p) => p.spec?.selector?.namespaces ?? [p.metadata.namespace ?? ''],
    },
  });
  const deployments = deploymentInformer(manager);
  const statefulSets = statefulSetInformer(manager);
  const pools = manager.informer<InferencePool>(apiVersion, 'InferencePool');
  const replicaSets = manager.informer<RevisionObject>('apps/v1', 'ReplicaSet', {
    transform: revisionObject,
    indexers: { [ownerIndex]: (r) => byOwner(r, r.revision.owner) },
  });
  const controllerRevisions = manager.informer<RevisionObject>('apps/v1', 'ControllerRevision', {
    transform: revisionObject,
    indexers: { [ownerIndex]: (r) => byOwner(r, r.revision.owner) },
  });
  const pods = manager.informer<HealthPod>('v1', 'Pod', {
    transform: healthPod,
    indexers: { [ownerIndex]: (p) => byOwner(p, p.health.owner) },
  });
  const nodes = nodeInformer(manager);
  const registry = manager.metrics.registry;
  const actionsCounter = new Counter({
    name: 'aurora_healing_actions_total',
    help: 'Remediation actions by policy, action and outcome (DryRun: recorded, not taken)',
    labelNames: ['namespace', 'policy', 'action', 'outcome'],
    registers: [registry],
  });
  const gauge = (name: string, help: string) =>
    new Gauge({ name, help, labelNames: ['namespace', 'policy'], registers: [registry] });
  const watchedGauge = gauge('aurora_healing_watched_targets', 'Targets each policy watches');
  const unhealthyGauge = gauge('aurora_healing_unhealthy_targets', 'Targets each policy finds failing now');
  const escalatedGauge = gauge('aurora_healing_escalated_targets', 'Targets left to a person');
  const budgetGauge = gauge(
    'aurora_healing_budget_remaining',
    'Actions each policy may still take in its window',
  );
  const stormGauge = gauge(
    'aurora_healing_storm_active',
    '1 while a storm (or its cool-down) holds every action',
  );
  const auditGauge = gauge('aurora_healing_audit_available', '1 when the policy can write its audit trail');
  const perPolicyGauges = [watchedGauge, unhealthyGauge, escalatedGauge, budgetGauge, stormGauge, auditGauge];

  const memories = new Map<string, PolicyMemory>();
  const connections = new Map<string, AuditConnection>();
  const secretKeys = createSecretKeyCache(manager.client, secretTtlMs);

  const policyKeysFor = (namespace: string | undefined) =>
    policies.byIndex('namespace', namespace ?? '').map((p) => `${p.metadata.namespace}/${p.metadata.name}`);

  /** The audit trail the policy's Secret names, migrated, with the policy's rows loaded. */
  async function auditFor(
    policy: HealingPolicy,
    memory: PolicyMemory,
    memoryKey: string,
    nowMs: number,
  ): Promise<{ ok: true; trail: AuditTrail; rows: AuditRow[] } | { ok: false; fault: AuditFault }> {
    const namespace = policy.metadata.namespace ?? '';
    const ref = policy.spec.audit.databaseSecretRef;
    const read = await secretKeys.read(namespace, ref, nowMs);
    if (!read.ok) return { ok: false, fault: { reason: 'AuditSecretNotFound', message: read.message } };
    if (!/^postgres(ql)?:\/\/\S+$/.test(read.value))
      return {
        ok: false,
        fault: {
          reason: 'AuditSecretNotFound',
          message: `the value in Secret ${namespace}/${ref.name} (key ${ref.key}) must be a postgres:// URL`,
        },
      };
    const url = read.value;
    const schema = options.auditSchema ?? 'aurora';
    const trailKey = `${url}\n${schema}`;
    let connection = connections.get(trailKey);
    if (!connection) {
      connection = {
        trail: openAuditTrail({ url, schema }),
        migrated: false,
        checkedAtMs: Number.NEGATIVE_INFINITY,
        probing: false,
        users: new Set(),
      };
      connections.set(trailKey, connection);
    }
    // A policy whose Secret now names another database leaves the old one.
    for (const [key, other] of connections) if (key !== trailKey) other.users.delete(memoryKey);
    connection.users.add(memoryKey);
    const where = `the audit database of Secret ${namespace}/${ref.name}`;
    if (!connection.migrated) {
      try {
        await connection.trail.migrate();
        connection.migrated = true;
      } catch (err) {
        return {
          ok: false,
          fault:
            err instanceof AuditRoleError
              ? { reason: 'AuditSchemaNotReady', message: `${where}: ${err.message}` }
              : pgFault(err, where, 'AuditSchemaNotReady'),
        };
      }
    }
    if (memory.trailKey !== trailKey || !memory.rows || memory.rows.length > 5_000) {
      try {
        memory.rows = await connection.trail.policyRows(policy.metadata.uid ?? '', nowMs - historyMs);
        memory.trailKey = trailKey;
        connection.checkedAtMs = nowMs;
        delete connection.unreachable;
      } catch (err) {
        delete memory.rows;
        return { ok: false, fault: pgFault(err, where, 'PostgreSQLUnavailable') };
      }
    } else {
      // A quiet policy reads and writes nothing for long stretches: a look every few seconds shows an
      // outage in status (and holds disruptive steps) when it begins, not when an action needs the trail.
      // The look runs beside the reconcile, one at a time per database, so a database that hangs holds no
      // worker; what it found counts from the next reconcile on.
      const everyMs = connection.unreachable === undefined ? auditCheckMs : auditRetryMs;
      const looked = connection;
      if (!looked.probing && nowMs - looked.checkedAtMs >= everyMs) {
        looked.probing = true;
        looked.checkedAtMs = nowMs;
        looked.trail
          .ping()
          .then(
            () => delete looked.unreachable,
            (err: unknown) => {
              looked.unreachable = err;
            },
          )
          .finally(() => {
            looked.probing = false;
          });
      }
      if (looked.unreachable !== undefined)
        return { ok: false, fault: pgFault(looked.unreachable, where, 'PostgreSQLUnavailable') };
    }
    return { ok: true, trail: connection.trail, rows: memory.rows };
  }

  /** Whether a policy selects a workload (before any other policy's claim). */
  function selects(policy: HealingPolicy, kind: Target['kind'], object: KubeObject): boolean {
    const selector = policy.spec?.selector;
    if (!selector) return false;
    const namespace = object.metadata.namespace ?? '';
    if (protectedNamespaces.has(namespace)) return false;
    if (!(selector.namespaces ?? [policy.metadata.namespace ?? '']).includes(namespace)) return false;
    if (!(selector.kinds ?? ['Deployment']).includes(kind)) return false;
    const labels = object.metadata.labels ?? {};
    if (labels[healingDisabledLabel] === 'disabled') return false;
    if ((object as WorkloadView).spec?.paused || object.metadata.deletionTimestamp) return false;
    // A pool's Deployment is watched through its pool.
    if (
      kind === 'Deployment' &&
      object.metadata.ownerReferences?.some((r) => r.controller && r.kind === 'InferencePool')
    )
      return false;
    return selectorMatches(selector.labelSelector, labels);
  }

  /** The older of two policies (then the first by name): it heals a target both select. */
  const older = (a: HealingPolicy, b: HealingPolicy) =>
    (a.metadata.creationTimestamp ?? '') < (b.metadata.creationTimestamp ?? '') ||
    ((a.metadata.creationTimestamp ?? '') === (b.metadata.creationTimestamp ?? '') &&
      `${a.metadata.namespace}/${a.metadata.name}` < `${b.metadata.namespace}/${b.metadata.name}`);

  /**
   * The targets a policy watches, by kind, in its namespaces, matching its selector; a target another,
   * older policy also selects is that policy's alone (two policies never both act on one target).
   */
  function targetsOf(policy: HealingPolicy): { targets: Target[]; yielded: string[] } {
    const { selector } = policy.spec;
    const namespaces = (selector.namespaces ?? [policy.metadata.namespace ?? '']).filter(
      (n) => !protectedNamespaces.has(n),
    );
    const targets: Target[] = [];
    const yielded = new Set<string>();
    for (const namespace of namespaces) {
      // Only a rival that acts claims a target: in Enforce, not paused, valid, not being deleted.
      const rivals = policies
        .byIndex('namespace', namespace)
        .filter(
          (p) =>
            p.metadata.uid !== policy.metadata.uid &&
            older(p, policy) &&
            !p.metadata.deletionTimestamp &&
            healingPolicySpec.safeParse(p.spec).success &&
            p.spec.mode === 'Enforce' &&
            !p.spec.paused,
        );
      for (const kind of selector.kinds) {
        const objects: KubeObject[] =
          kind === 'Deployment'
            ? deployments.list(namespace)
            : kind === 'StatefulSet'
              ? statefulSets.list(namespace)
              : pools.list(namespace);
        for (const object of objects) {
          if (!selects(policy, kind, object)) continue;
          const owner = rivals.find((p) => selects(p, kind, object));
          if (owner) {
            yielded.add(`${owner.metadata.namespace}/${owner.metadata.name}`);
            continue;
          }
          targets.push({ kind, object: object as Target['object'] });
        }
      }
    }
    return { targets, yielded: [...yielded] };
  }

  /** A target's pods, revisions and current revision, from the caches. */
  function snapshotOf(t: Target, nodeReady: (n: string) => boolean) {
    const namespace = t.object.metadata.namespace ?? '';
    const name = t.object.metadata.name;
    const workloadKind = t.kind === 'StatefulSet' ? 'StatefulSet' : 'Deployment';
    let revisionObjects: RevisionObject[];
    let targetPods: HealthPod[];
    let current: string | undefined;
    if (workloadKind === 'StatefulSet') {
      revisionObjects = controllerRevisions.byIndex(ownerIndex, `${namespace}/StatefulSet/${name}`);
      targetPods = pods.byIndex(ownerIndex, `${namespace}/StatefulSet/${name}`);
      current = (t.object as WorkloadView).status?.updateRevision;
    } else {
      revisionObjects = replicaSets.byIndex(ownerIndex, `${namespace}/Deployment/${name}`);
      targetPods = revisionObjects.flatMap((rs) =>
        pods.byIndex(ownerIndex, `${namespace}/ReplicaSet/${rs.metadata.name}`),
      );
      const newest = [...revisionObjects].sort((a, b) => b.revision.number - a.revision.number)[0];
      current = newest?.revision.id;
    }
    const snapshot: TargetSnapshot = {
      kind: t.kind,
      namespace,
      name,
      uid: t.object.metadata.uid ?? '',
      pods: podsThatCount(targetPods, nodeReady),
    };
    return {
      snapshot,
      workloadKind: workloadKind as 'Deployment' | 'StatefulSet',
      revisions: revisionsOf(revisionObjects, current),
      revisionObjects,
      ...(current ? { current } : {}),
    };
  }

  addKindController(manager, {
    name: 'healingpolicy',
    informer: policies,
    spec: healingPolicySpec,
    events: healingPolicyEvents,
    sources: [
      // Of a pod, and of a workload, the cached view is all a policy reads (a pod's health; a workload's
      // labels, replicas, selector and revision): writes to the rest (annotations, probe times,
      // conditions, ready counts) wake nobody.
      watch(pods, (p) => policyKeysFor(p.metadata.namespace), changedBeyondVersion),
      watch(deployments, (d) => policyKeysFor(d.metadata.namespace), changedBeyondVersion),
      watch(statefulSets, (s) => policyKeysFor(s.metadata.namespace), changedBeyondVersion),
      // Of a pool, only its metadata and spec (its pods are watched, and a rollout changes its
      // Deployment, which is): the pool controller's status writes wake nobody.
      watch(pools, (p) => policyKeysFor(p.metadata.namespace), meaningfulChange),
      // A node going NotReady (or cordoned) matters to every policy; heartbeats do not.
      watch(
        nodes,
        () => policies.list().map((p) => `${p.metadata.namespace}/${p.metadata.name}`),
        (e) => e.type !== 'updated' || nodeFacts(e.old) !== nodeFacts(e.object),
      ),
    ],
    forget(key) {
      const [namespace = '', policy = ''] = key.split('/');
      for (const memoryKey of memories.keys())
        if (memoryKey.startsWith(`${key}/`)) memories.delete(memoryKey);
      for (const g of perPolicyGauges) g.remove({ namespace, policy });
      for (const action of remediationActions)
        for (const outcome of ['Done', 'DryRun', 'Refused', 'Failed', 'Cancelled'])
          actionsCounter.remove({ namespace, policy, action, outcome });
      // A connection no remaining policy uses is closed.
      for (const [trailKey, connection] of connections) {
        for (const user of connection.users) if (user.startsWith(`${key}/`)) connection.users.delete(user);
        if (connection.users.size > 0) continue;
        connections.delete(trailKey);
        void connection.trail.close().catch(() => {});
      }
    },
    async reconcile(ctx, policy) {
      const nowMs = ctx.now().getTime();
      const namespace = policy.metadata.namespace ?? '';
      const memoryKey = `${ctx.key}/${policy.metadata.uid}`;
      let memory = memories.get(memoryKey);
      if (!memory) {
        memory = { detectors: new Map(), healthySince: new Map() };
        memories.set(memoryKey, memory);
      }
      const { spec } = policy;
      const labels = { namespace, policy: policy.metadata.name };

      // Nodes: pods on a NotReady node are the node's problem; many NotReady nodes hold every action.
      const allNodes = nodes.list();
      const notReady = new Set(allNodes.filter((n) => !nodeIsReady(n)).map((n) => n.metadata.name));
      const nodeReady = (n: string) => !notReady.has(n);
      const clusterFault =
        notReady.size >= 2 && notReady.size * 100 > spec.guardrails.maxUnhealthyPercent * allNodes.length
          ? `${notReady.size} of ${allNodes.length} nodes are not Ready: nothing disruptive is done`
          : undefined;
      const cluster = clusterFault ? { healthy: false, reason: clusterFault } : { healthy: true };

      const { targets, yielded } = targetsOf(policy);
      const snapshots = targets.map((t) => ({ t, ...snapshotOf(t, nodeReady) }));
      // One query per check interval: pod events in the namespace wake the policy far more often.
      let metric: QueryResult | undefined;
      const promql = spec.detectors.prometheus;
      if (promql) {
        const asked = `${promql.url}\n${promql.query}`;
        if (memory.metric?.asked === asked && nowMs - memory.metric.atMs < interval * 0.9)
          metric = memory.metric.result;
        else {
          metric = await queryPrometheus(promql.url, promql.query, ctx.signal);
          memory.metric = { asked, atMs: nowMs, result: metric };
        }
      }

      const audit = await auditFor(policy, memory, memoryKey, nowMs);
      const rows = audit.ok ? audit.rows : (memory.rows ?? []);
      const trail = trailState(rows, spec.mode);
      const failedRevisions = new Set(
        rows
          // A revision that failed while it served (found failing, or acted on) is never a rollback target.
          .filter(
            (r) => (r.type === 'Detected' || r.type === 'Intent') && typeof r.details?.revision === 'string',
          )
          .map((r) => `${r.target?.uid}/${r.details?.revision}`),
      );

      const inputs: TargetInput[] = [];
      const byUid = new Map<string, (typeof snapshots)[number]>();
      const seen = new Set<string>();
      let nextDueMs = interval;
      for (const s of snapshots) {
        const uid = s.snapshot.uid;
        seen.add(uid);
        byUid.set(uid, s);
        const result = detect({
          target: s.snapshot,
          detectors: spec.detectors,
          memory: memory.detectors.get(uid) ?? emptyMemory(),
          ...(metric && spec.detectors.prometheus
            ? {
                metric: readingFor(
                  metric,
                  { ...s.snapshot, pods: s.snapshot.pods.map((p) => p.name) },
                  spec.detectors.prometheus.operator,
                ),
              }
            : {}),
          nowMs,
          checkIntervalMs: interval,
        });
        memory.detectors.set(uid, result.memory);
        if (result.verdict.state !== 'Healthy') memory.healthySince.delete(uid);
        else if (!memory.healthySince.has(uid)) memory.healthySince.set(uid, nowMs);
        const healthySinceMs = memory.healthySince.get(uid);
        // Wake when an unready pod reaches the readiness window, rather than a check interval later.
        if (spec.detectors.readinessFailing) {
          for (const p of s.snapshot.pods) {
            const dueMs = p.readyChangedAtMs + spec.detectors.readinessFailing.forSeconds * 1000 - nowMs;
            if (!p.ready && dueMs > 0) nextDueMs = Math.min(nextDueMs, dueMs + 50);
          }
        }
        const target = { kind: s.snapshot.kind, namespace: s.snapshot.namespace, name: s.snapshot.name, uid };
        const revisions: RevisionInfo[] = s.revisions.map((r) =>
          failedRevisions.has(`${uid}/${r.id}`) && r.id !== s.current
            ? { ...r, failedWhileServing: true }
            : r,
        );
        let diagnosis: Diagnosis | undefined;
        if (result.verdict.state === 'Failing') {
          diagnosis = diagnose({
            target: s.snapshot,
            verdict: result.verdict,
            revisions,
            ...(s.current ? { currentRevision: s.current } : {}),
            failingSinceMs: trail.episodes.get(uid)?.detectedAtMs ?? nowMs,
            healthyRevisionSeconds: spec.guardrails.healthyRevisionSeconds,
          });
        }
        inputs.push({
          target,
          verdict: result.verdict,
          ...(diagnosis ? { diagnosis } : {}),
          approvals: approvalsOf(s.t.object),
          ...(healthySinceMs !== undefined ? { healthySinceMs } : {}),
          ...(s.current ? { revision: s.current } : {}),
        });
      }
      for (const uid of memory.detectors.keys()) if (!seen.has(uid)) memory.detectors.delete(uid);
      for (const uid of memory.healthySince.keys()) if (!seen.has(uid)) memory.healthySince.delete(uid);
      // A target nothing was done to ends its episode after a few healthy checks.
      const settleMs = Math.max(2 * interval, 2_000);

      const record = async (
        trailRef: AuditTrail,
        entry: Omit<AuditEntry, 'atMs' | 'operator' | 'policy'>,
      ) => {
        ctx.signal.throwIfAborted();
        const row = await trailRef
          .append({
            ...entry,
            atMs: ctx.now().getTime(),
            operator: identity,
            policy: { namespace, name: policy.metadata.name, uid: policy.metadata.uid ?? '' },
          } as AuditEntry)
          .catch((err: unknown) => {
            throw new AuditWriteError(err);
          });
        memory.rows?.push(row);
        return row;
      };

      let auditFault: AuditFault | undefined = audit.ok ? undefined : audit.fault;
      // Intents left without an outcome (a replica stopped between them) are settled by looking first.
      if (audit.ok) {
        for (const [uid, episode] of trail.episodes) {
          const intent = episode.openIntent;
          if (!intent) continue;
          try {
            await settleIntent(
              audit.trail,
              intent,
              inputs.find((i) => i.target.uid === uid),
            );
          } catch (err) {
            if (!(err instanceof AuditWriteError)) throw err;
            auditFault = pgFault(err.cause, 'the audit database', 'PostgreSQLUnavailable');
            // Whether the last row committed is unknown: read the trail again once it answers.
            delete memory.rows;
            break;
          }
        }
      }

      const plan = planHealing({
        spec,
        nowMs,
        targets: inputs,
        trail: trailState(memory.rows ?? rows, spec.mode),
        auditAvailable: !auditFault,
        cluster,
        settleMs,
      });

      if (audit.ok && !auditFault) {
        for (const step of plan.steps) {
          try {
            if ('record' in step) {
              const row = await record(audit.trail, step.record);
              announce(row);
              if (row.type === 'AwaitingApproval' && row.target && row.action && spec.mode === 'Enforce')
                await withdrawApproval(row.target, row.action as Action);
            } else {
              const s = byUid.get(step.action.target.uid);
              if (!s) continue;
              await act(audit.trail, step.action, s);
            }
          } catch (err) {
            if (ctx.signal.aborted || !(err instanceof AuditWriteError)) throw err;
            // The trail could not be written: nothing more is done until it can, and what it holds is read
            // again then (the last row may or may not have committed).
            auditFault = pgFault(err.cause, 'the audit database', 'PostgreSQLUnavailable');
            delete memory.rows;
            break;
          }
        }
      }

      const finalPlan = auditFault
        ? planHealing({
            spec,
            nowMs,
            targets: inputs,
            trail: trailState(memory.rows ?? rows, spec.mode),
            auditAvailable: false,
            cluster,
            settleMs,
          })
        : plan;
      watchedGauge.set(labels, finalPlan.targets.length);
      unhealthyGauge.set(labels, finalPlan.targets.filter((t) => t.state !== 'Healthy').length);
      escalatedGauge.set(labels, finalPlan.targets.filter((t) => t.escalated).length);
      budgetGauge.set(labels, finalPlan.budgetRemaining);
      stormGauge.set(
        labels,
        finalPlan.storm.active || finalPlan.storm.coolingDownUntilMs !== undefined ? 1 : 0,
      );
      auditGauge.set(labels, auditFault ? 0 : 1);
      return {
        status: healingPolicyStatus({
          spec,
          generation: policy.metadata.generation,
          ...(policy.status ? { previous: policy.status } : {}),
          now: ctx.now(),
          plan: finalPlan,
          // During an outage, the rows last read: what was done before it stays visible.
          rows: memory.rows ?? rows,
          ...(auditFault ? { auditFault } : {}),
          ...(clusterFault ? { clusterFault } : {}),
          yielded,
        }),
        requeueAfterMs: auditFault ? Math.min(interval, 2_000) : nextDueMs,
      };

      /** An Event for a row people should see in kubectl describe. */
      function announce(row: AuditRow) {
        const what = row.target
          ? `${row.target.kind} ${row.target.namespace}/${row.target.name}`
          : 'the policy';
        const note = `${what}: ${row.message ?? row.reason ?? ''} (audit row ${row.seq})`;
        if (row.type === 'Detected') ctx.record('Warning', 'TargetFailing', 'Detect', note);
        else if (row.type === 'Skipped') ctx.record('Normal', 'StepSkipped', row.action ?? 'Skip', note);
        else if (row.type === 'AwaitingApproval')
          ctx.record('Warning', 'AwaitingApproval', row.action ?? 'Approve', note);
        else if (row.type === 'Escalated') ctx.record('Warning', 'Escalated', 'Escalate', note);
        else if (row.type === 'Recovered') ctx.record('Normal', 'Recovered', 'Recover', note);
      }

      /** An intent's outcome, as its own row naming it, counted in the actions metric. */
      async function recordOutcome(
        trailRef: AuditTrail,
        intent: AuditRow,
        o: { outcome: string; reason: string; message: string; details?: AuditEntry['details'] },
      ): Promise<AuditRow> {
        const row = await record(trailRef, {
          type: 'Outcome',
          ...(intent.target ? { target: intent.target } : {}),
          ...(intent.step !== undefined ? { step: intent.step } : {}),
          ...(intent.action ? { action: intent.action } : {}),
          intent: intent.seq,
          ...(intent.mode ? { mode: intent.mode } : {}),
          outcome: o.outcome,
          reason: o.reason,
          message: o.message,
          ...(o.details ? { details: o.details } : {}),
        });
        actionsCounter.inc({ ...labels, action: intent.action ?? 'unknown', outcome: o.outcome });
        return row;
      }

      /** Writes the intent, acts (unless DryRun), writes the outcome. */
      async function act(trailRef: AuditTrail, a: PlannedAction, s: (typeof snapshots)[number]) {
        // A fresh read of the target: the cache could be stale, and an API server that cannot answer
        // is no time for disruption. What excludes a target, and the approval, are checked on it again.
        const live = await readLive(a.target);
        if (live === 'unreachable' || !live || live.metadata.uid !== a.target.uid) return;
        if (live.metadata.deletionTimestamp || live.metadata.labels?.[healingDisabledLabel] === 'disabled')
          return;
        if ((live as WorkloadView).spec?.paused) return;
        const needsApproval = spec.approval.requiredFor.includes(a.action);
        if (needsApproval && !approvalsOf(live).has(a.action)) return;
        let params = actionParams(a, s, spec.guardrails.respectDisruptionBudgets, nowMs, live);
        // A pool goes back only to a release it still has (the pool keeps the two served last).
        const toRelease = params.ok ? params.params.toRelease : undefined;
        if (toRelease) {
          const kept = await manager.client
            .get({
              apiVersion: 'v1',
              kind: 'ConfigMap',
              metadata: { name: toRelease, namespace: a.target.namespace },
            })
            .catch(() => 'unreachable' as const);
          if (kept === 'unreachable') return;
          if (!kept)
            params = {
              ok: false,
              reason: 'NoHealthyRevision',
              message: `release ${toRelease} is no longer kept: nothing to go back to`,
            };
        }
        if (!params.ok) {
          // Nothing to do it with (no failing pod left, no room to scale to): a refusal, recorded.
          const intent = await record(trailRef, intentEntry(a, spec.mode, {}));
          const outcome = await recordOutcome(trailRef, intent, {
            outcome: 'Refused',
            reason: params.reason,
            message: params.message,
          });
          ctx.record(
            'Warning',
            params.reason,
            a.action,
            `${describeTarget(a)}: ${params.message} (audit row ${outcome.seq})`,
          );
          return;
        }
        const intent = await record(trailRef, intentEntry(a, spec.mode, params.details));
        await failpoint('healing-after-intent');
        let outcome: Awaited<ReturnType<typeof performAction>>;
        if (spec.mode === 'DryRun') {
          outcome = {
            outcome: 'Done',
            reason: 'DryRun',
            message: `would ${a.action}: ${a.diagnosis.message}`,
          };
        } else {
          outcome = await performAction(manager.client, params.params);
          // The approval authorised this attempt, whatever came of it: one approval, one attempt.
          if (needsApproval) await withdrawApproval(a.target, a.action, live);
        }
        await failpoint('healing-before-outcome');
        const row = await recordOutcome(trailRef, intent, {
          ...outcome,
          outcome: spec.mode === 'DryRun' ? 'DryRun' : outcome.outcome,
        });
        ctx.record(
          outcome.outcome === 'Done' ? 'Normal' : 'Warning',
          outcome.reason,
          a.action,
          `${describeTarget(a)}: ${a.diagnosis.cause}: ${outcome.message} (audit rows ${intent.seq}, ${row.seq})`,
        );
      }

      /** An intent found open: done already (look), still needed and still allowed (carry it out under it), or not. */
      async function settleIntent(trailRef: AuditTrail, intent: AuditRow, input: TargetInput | undefined) {
        const params = intent.details?.params
          ? (JSON.parse(String(intent.details.params)) as ActionParams)
          : undefined;
        const outcomeOf = (o: { outcome: string; reason: string; message: string }) =>
          recordOutcome(trailRef, intent, o);
        if (intent.mode === 'DryRun' || !params) {
          await outcomeOf({
            outcome: intent.mode === 'DryRun' ? 'DryRun' : 'Cancelled',
            reason: 'SettledAfterRestart',
            message: 'recorded again after the replica that wrote the intent stopped',
          });
          return;
        }
        const effect = await actionTookEffect(manager.client, params);
        if (effect === 'unknown') return;
        if (effect) {
          await outcomeOf({
            outcome: 'Done',
            reason: 'ObservedDone',
            message: `${intent.action} had taken effect before the replica that began it stopped`,
          });
          return;
        }
        // Not done: carried out only if everything that allowed it then allows it now.
        const action = intent.action as Action;
        const timeoutMs = (spec.escalation[intent.step ?? 0]?.timeoutSeconds ?? 0) * 1000;
        const current = input ? byUid.get(input.target.uid)?.current : undefined;
        const stormEndedAt = trail.storm.endedAtMs;
        // A storm now, before the plan records it, holds this too.
        const stormNow = isStorm(
          inputs.filter((t) => t.verdict.state === 'Failing').length,
          inputs.length,
          spec.guardrails.maxUnhealthyPercent,
        );
        const why =
          input?.verdict.state !== 'Failing'
            ? 'the target no longer needs it'
            : spec.mode !== 'Enforce' || spec.paused
              ? 'the policy no longer enforces'
              : clusterFault
                ? 'the cluster looks unhealthy'
                : stormNow ||
                    trail.storm.active ||
                    (stormEndedAt !== undefined &&
                      nowMs - stormEndedAt < spec.guardrails.stormCooldownSeconds * 1000)
                  ? 'a storm holds every action'
                  : nowMs - intent.atMs >= timeoutMs
                    ? 'its step timed out meanwhile'
                    : spec.approval.requiredFor.includes(action) && !input.approvals.has(action)
                      ? 'its approval was withdrawn'
                      : intent.details?.revision !== undefined && intent.details.revision !== current
                        ? 'the target moved to another revision'
                        : undefined;
        if (why) {
          await outcomeOf({
            outcome: 'Cancelled',
            reason: 'NoLongerAllowed',
            message: `${intent.action} was not carried out: ${why}`,
          });
          return;
        }
        // The trail must still take the outcome before anything is done.
        await trailRef.head().catch((err: unknown) => {
          throw new AuditWriteError(err);
        });
        const done = await performAction(manager.client, params);
        if (spec.approval.requiredFor.includes(action) && intent.target)
          await withdrawApproval(intent.target, action);
        await outcomeOf({ ...done, message: `${done.message} (carried out under the intent left open)` });
      }
    },
  });

  /** A target read from the API server, not the cache; 'unreachable' when it cannot answer. */
  function readLive(target: AuditTarget) {
    return manager.client
      .get<KubeObject & { spec?: Record<string, unknown> }>(targetRef(target))
      .catch(() => 'unreachable' as const);
  }

  /**
   * Takes an action out of the target's approval annotation: when it is used, and when a request is
   * recorded (an approval given before anything asked for it is stale).
   */
  async function withdrawApproval(target: AuditTarget, action: Action, live?: KubeObject) {
    const object = live ?? (await readLive(target));
    if (object === 'unreachable' || !object) return;
    const approved = object.metadata.annotations?.[approveAnnotation];
    if (!approved) return;
    const given = approvalList(approved);
    const left = given.filter((x) => x !== action);
    if (left.length === given.length) return;
    // Only if the annotation is still what was read: a person's edit in between is never overwritten.
    const path = '/metadata/annotations/aurora.health~1approve';
    await manager.client
      .patch(
        targetRef(target),
        [
          { op: 'test', path, value: approved },
          left.length ? { op: 'replace', path, value: left.join(',') } : { op: 'remove', path },
        ],
        { type: 'json', fieldManager: healingFieldManager },
      )
      .catch(() => {});
  }

  function describeTarget(a: PlannedAction) {
    return `${a.target.kind} ${a.target.namespace}/${a.target.name}`;
  }
}

function intentEntry(
  a: PlannedAction,
  mode: 'Enforce' | 'DryRun',
  details: Record<string, string | number | boolean | string[]>,
): Omit<AuditEntry, 'atMs' | 'operator' | 'policy'> {
  return {
    type: 'Intent',
    target: a.target,
    step: a.step,
    action: a.action,
    mode,
    cause: a.diagnosis.cause,
    reason: a.diagnosis.cause,
    message: a.diagnosis.message,
    details,
  };
}

/** The action's parameters, fixed before the intent is written; or why it cannot be done. */
function actionParams(
  a: PlannedAction,
  s: {
    t: Target;
    snapshot: TargetSnapshot;
    workloadKind: 'Deployment' | 'StatefulSet';
    revisionObjects: RevisionObject[];
    current?: string;
  },
  respectDisruptionBudgets: boolean,
  nowMs: number,
  /** The target as the API server has it now. */
  live: KubeObject & { spec?: Record<string, unknown> },
):
  | { ok: true; params: ActionParams; details: Record<string, string | number | boolean | string[]> }
  | { ok: false; reason: string; message: string } {
  const base = {
    action: a.action,
    kind: a.target.kind as ActionParams['kind'],
    namespace: a.target.namespace,
    name: a.target.name,
    workloadKind: s.workloadKind,
    workloadName: a.target.name,
  };
  let params: ActionParams;
  const failingPods = (
    a.diagnosis.node
      ? s.snapshot.pods.filter((p) => p.nodeName === a.diagnosis.node)
      : s.snapshot.pods.filter((p) => !p.ready || p.containers.some((c) => c.waitingReason || c.restarts > 0))
  ).slice(0, 10);
  switch (a.action) {
    case 'RestartPod':
      if (failingPods.length === 0)
        return { ok: false, reason: 'NothingToRestart', message: 'no failing pod is left to restart' };
      params = {
        ...base,
        pods: failingPods.map((p) => ({ name: p.name, uid: p.uid })),
        respectDisruptionBudgets,
      };
      break;
    case 'RestartRollout':
      params = { ...base, restartedAt: new Date(nowMs).toISOString() };
      break;
    case 'Rollback': {
      const to = a.diagnosis.rollbackTo;
      const object = to && s.revisionObjects.find((r) => r.revision.id === to.id);
      if (!to || !object)
        return {
          ok: false,
          reason: 'NoHealthyRevision',
          message: 'no earlier healthy revision to roll back to',
        };
      if (a.target.kind === 'InferencePool') {
        // A pool goes back to the release (model version) it served before, through its own controller.
        const toRelease = object.revision.release;
        const fromRelease = s.revisionObjects.find((r) => r.revision.id === s.current)?.revision.release;
        if (!toRelease || !fromRelease || toRelease === fromRelease)
          return {
            ok: false,
            reason: 'NoHealthyRevision',
            message: 'no earlier release of the pool to go back to',
          };
        params = {
          ...base,
          toRevisionObject: object.metadata.name,
          toRevision: to.id,
          toRelease,
          fromRelease,
        };
        break;
      }
      params = { ...base, toRevisionObject: object.metadata.name, toRevision: to.id };
      break;
    }
    case 'ScaleOut': {
      // From the live replicas, never the cache's (a stale count could scale down), within the target's
      // bounds: a pool's maxReplicas, a workload's aurora.health/max-replicas annotation.
      const spec = live.spec as { replicas?: number; maxReplicas?: number; minReplicas?: number } | undefined;
      const from = spec?.replicas ?? spec?.minReplicas ?? s.snapshot.pods.length;
      const annotated = Number(live.metadata.annotations?.[maxReplicasAnnotation]);
      const max =
        s.t.kind === 'InferencePool'
          ? (spec?.maxReplicas ?? from)
          : Number.isInteger(annotated) && annotated > 0
            ? annotated
            : Number.MAX_SAFE_INTEGER;
      const to = Math.min(max, from + (a.scaleOutBy ?? 1));
      if (to <= from)
        return { ok: false, reason: 'AtMaximum', message: `already at its maximum of ${max} replicas` };
      params = { ...base, fromReplicas: from, toReplicas: to };
      break;
    }
    case 'CordonNode':
      if (!a.diagnosis.node)
        return { ok: false, reason: 'NoSingleNode', message: 'the failure is not confined to one node' };
      params = { ...base, node: a.diagnosis.node };
      break;
  }
  const details: Record<string, string | number | boolean | string[]> = {
    // Everything needed to see later whether it happened, as one canonical string.
    params: JSON.stringify(params),
    ...(s.current ? { revision: s.current } : {}),
    ...(params.pods ? { pods: params.pods.map((p) => p.name) } : {}),
    ...(params.toRevisionObject ? { toRevision: params.toRevisionObject } : {}),
    ...(params.toRelease ? { toRelease: params.toRelease, fromRelease: params.fromRelease ?? '' } : {}),
    ...(params.toReplicas !== undefined
      ? { fromReplicas: params.fromReplicas ?? 0, toReplicas: params.toReplicas }
      : {}),
    ...(params.node ? { node: params.node } : {}),
  };
  return { ok: true, params, details };
}

/** The words of an approval annotation (`Rollback,CordonNode`), as written. */
const approvalList = (value: string) =>
  value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);

/** The actions a person approved on a target. */
function approvalsOf(obj: KubeObject): Set<Action> {
  return new Set(
    approvalList(obj.metadata.annotations?.[approveAnnotation] ?? '').filter((v): v is Action =>
      (remediationActions as readonly string[]).includes(v),
    ),
  );
}

const nodeFacts = (n: NodeView | undefined) =>
  n ? `${nodeIsReady(n)}/${n.spec?.unschedulable ?? false}` : '';

/** A row the audit trail did not take: no further action until it does. */
class AuditWriteError extends Error {
  constructor(cause: unknown) {
    super('the audit trail could not be written', { cause });
  }
}

/** A PostgreSQL failure as a fault: its code only (a connection error can carry the host). */
function pgFault(err: unknown, where: string, reason: AuditFault['reason']): AuditFault {
  const code = (err as { code?: string }).code ?? (err as Error).name ?? 'Error';
  return { reason, message: `${where} cannot be written (${code})` };
}
