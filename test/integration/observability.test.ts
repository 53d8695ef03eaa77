// The chart's Grafana dashboard and Prometheus rules against the operator itself. promtool (built from the
// Prometheus module) checks the rules and runs their unit tests; the dashboard must be a Grafana model that
// asks only the chosen data source; and every metric either of them names must be in a real /metrics,
// scraped from the operator running all its controllers with one object of each kind driven until its
// series exist. A real Prometheus then scrapes that /metrics and evaluates every rule.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { registerAuroraControllers } from '../../cmd/operator.ts';
import { fileVerdictReasons } from '../../controllers/triagemodel/status.ts';
import type { TriageModel } from '../../crds/kinds.ts';
import { exampleModelFiles } from '../../hack/example-model/generate.ts';
import { defaultToolsDir, parseYamlObjects, repoRoot } from '../../hack/local-cluster/control-plane.ts';
import { appDeployment } from '../../hack/local-cluster/deployments.ts';
import { keepFailing } from '../../hack/local-cluster/pod-failures.ts';
import { waitFor } from '../../hack/local-cluster/process.ts';
import { type LocalPrometheus, startPrometheus } from '../../hack/local-cluster/prometheus.ts';
import { loadOperatorConfig } from '../../operator/config.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { Manager } from '../../operator/manager.ts';
import { createMetrics } from '../../operator/metrics.ts';
import { createStateStore, type StateStore } from '../../state/postgres.ts';
import {
  createTestManager,
  createTestNamespace,
  operatorClient,
  testAccess,
  uniqueSuffix,
} from '../harness/cluster.ts';
import { guardrails, ladder, selectorFor } from '../harness/healing.ts';
import { exposedSeries, unexported, variableQueryExpr } from '../harness/promql.ts';
import { startTestValidator } from '../harness/validator.ts';

const promtool = join(defaultToolsDir, 'bin', 'promtool');
const rulesDir = join(repoRoot, 'charts/aurora/files/prometheus');
const rulesFile = join(rulesDir, 'aurora.rules.yaml');
const dashboardFile = join(repoRoot, 'charts/aurora/files/dashboards/aurora.json');
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template literal
const datasourceVariable = '${datasource}';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const rules = (parse(readFileSync(rulesFile, 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> })
  .groups;
const alerts = rules.flatMap((g) => g.rules);

interface Target {
  expr?: string;
  refId?: string;
  datasource?: unknown;
}
interface Panel {
  id?: number;
  type: string;
  title?: string;
  datasource?: unknown;
  targets?: Target[];
  panels?: Panel[];
  gridPos?: unknown;
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: {
    list: Array<{ name: string; type: string; query: string | { query: string }; datasource?: unknown }>;
  };
}
const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as Dashboard;
/** Every panel, those inside collapsed rows too. */
const allPanels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);

/** Every query the dashboard and the rules run, with where it is. */
function queries(): Array<{ where: string; expr: string }> {
  const found: Array<{ where: string; expr: string }> = [];
  for (const p of allPanels)
    for (const t of p.targets ?? [])
      found.push({ where: `panel "${p.title}" ${t.refId}`, expr: t.expr ?? '' });
  for (const v of dashboard.templating.list) {
    if (v.type !== 'query') continue;
    const expr = variableQueryExpr(typeof v.query === 'string' ? v.query : v.query.query);
    if (expr) found.push({ where: `variable ${v.name}`, expr });
  }
  for (const r of alerts) found.push({ where: `rule ${r.alert ?? r.record}`, expr: r.expr });
  return found;
}

const run = promisify(execFile);
/** Runs promtool; its exit status and everything it printed. */
async function promtoolRun(args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run(promtool, args, { cwd: rulesDir });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('the Prometheus rules', () => {
  it('pass promtool check rules', async () => {
    const { code, output } = await promtoolRun(['check', 'rules', 'aurora.rules.yaml']);
    expect(output).toContain(`SUCCESS: ${alerts.length} rules found`);
    expect(code).toBe(0);
  });

  it('pass their promtool unit tests, which make each alert fire and keep it silent where it must be', async () => {
    const { code, output } = await promtoolRun(['test', 'rules', 'aurora.rules.test.yaml']);
    expect(output).toContain('SUCCESS');
    expect(output).not.toContain('FAILED');
    expect(code).toBe(0);
    const unitTests = parse(readFileSync(join(rulesDir, 'aurora.rules.test.yaml'), 'utf8')) as {
      rule_files: string[];
      tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }>;
    };
    expect(unitTests.rule_files).toEqual(['aurora.rules.yaml']);
    const cases = unitTests.tests.flatMap((t) => t.alert_rule_test ?? []);
    const firing = new Set(cases.filter((c) => (c.exp_alerts ?? []).length > 0).map((c) => c.alertname));
    const silent = new Set(cases.filter((c) => (c.exp_alerts ?? []).length === 0).map((c) => c.alertname));
    const names = alerts.map((a) => a.alert as string);
    expect(names.filter((n) => !firing.has(n))).toEqual([]);
    expect(names.filter((n) => !silent.has(n))).toEqual([]);
    // Every alert the tests name exists (a renamed alert would leave its tests checking nothing).
    expect([...firing, ...silent].filter((n) => !names.includes(n))).toEqual([]);
  });

  it('give every alert a for, a severity, a summary and a runbook-like description', () => {
    const names = alerts.map((a) => a.alert);
    for (const required of [
      'AuroraCareQueueCategoryBreaching',
      'AuroraHealingStorm',
      'AuroraHealingAuditUnavailable',
      'AuroraInferencePoolDegraded',
      'AuroraTriageModelRejected',
      'AuroraOperatorNoLeader',
      'AuroraReconcileErrors',
    ])
      expect(names).toContain(required);
    for (const a of alerts) {
      expect(a.alert, a.expr).toMatch(/^Aurora[A-Z][A-Za-z]+$/);
      expect(a.for, a.alert).toMatch(/^\d+[smh]$/);
      expect(['critical', 'warning'], a.alert).toContain(a.labels?.severity);
      expect(Object.keys(a.labels ?? {}), a.alert).toEqual(['severity']);
      expect(a.annotations?.summary?.length ?? 0, a.alert).toBeGreaterThan(10);
      // What to look at: a command to run, not just the symptom again.
      expect(a.annotations?.description, a.alert).toMatch(/kubectl /);
    }
  });

  it('call rejected every verdict the TriageModel controller gives on a file, and nothing it tries again', () => {
    const rejected = alerts.find((a) => a.alert === 'AuroraTriageModelRejected')?.expr ?? '';
    const reasons = /reason=~"([^"]+)"/.exec(rejected)?.[1]?.split('|') ?? [];
    const verdicts = [...fileVerdictReasons].filter((r) => r !== 'Validated');
    expect(verdicts.length).toBeGreaterThan(0);
    expect(verdicts.filter((r) => !reasons.includes(r))).toEqual([]);
    expect(reasons).not.toContain('SourceUnavailable');
    expect(reasons).not.toContain('ValidationRetrying');
  });
});

describe('the Grafana dashboard', () => {
  it('is a dashboard model that asks only the data source chosen in its variable', () => {
    expect(dashboard.uid).toBe('aurora-overview');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    const variables = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
    expect(variables.datasource).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(variables.namespace).toMatchObject({ type: 'query' });
    // No data source uid anywhere but the variable's: not in panels, targets, variables or annotations.
    const uids = [...readFileSync(dashboardFile, 'utf8').matchAll(/"uid":\s*"([^"]*)"/g)].map((m) => m[1]);
    expect(uids.filter((u) => u !== datasourceVariable && u !== dashboard.uid)).toEqual([]);
    const ids = allPanels.map((p) => p.id);
    expect(ids.every((id) => Number.isInteger(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    const queried = allPanels.filter((p) => p.type !== 'row');
    expect(queried.length).toBeGreaterThan(10);
    const prometheus = { type: 'prometheus', uid: datasourceVariable };
    for (const p of queried) {
      expect(p.datasource, p.title).toEqual(prometheus);
      expect(p.gridPos, p.title).toBeDefined();
      expect(p.targets?.length ?? 0, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) {
        expect(t.expr?.trim().length ?? 0, `${p.title} ${t.refId}`).toBeGreaterThan(0);
        expect(t.datasource ?? prometheus, `${p.title} ${t.refId}`).toEqual(prometheus);
      }
      expect(new Set(p.targets?.map((t) => t.refId)).size, p.title).toBe(p.targets?.length);
    }
    for (const v of dashboard.templating.list.filter((v) => v.type === 'query'))
      expect(v.datasource, v.name).toEqual(prometheus);
    expect(allPanels.filter((p) => p.type === 'row').map((p) => p.title)).toEqual([
      'Care queues',
      'Inference pools',
      'Healing',
      'Operator',
    ]);
  });
});

describe('the metrics the dashboard and the rules name', () => {
  const client = createKubeClient(testAccess());
  let namespace: string;
  let dropNamespace: () => Promise<void>;
  let manager: Manager;
  let validator: Awaited<ReturnType<typeof startTestValidator>>;
  let store: StateStore;
  let redis: Redis;
  let prometheus: LocalPrometheus | undefined;
  let failing: ReturnType<typeof keepFailing> | undefined;
  let schema: string;

  const metricsText = async () => {
    const res = await fetch(`http://127.0.0.1:${manager.healthPort()}/metrics`);
    expect(res.status).toBe(200);
    return res.text();
  };

  beforeAll(async () => {
    ({ name: namespace, cleanup: dropNamespace } = await createTestNamespace('observability'));
    schema = `test_observability_${uniqueSuffix()}`;
    redis = new Redis(inject('redisUrl'));
    store = createStateStore({ url: inject('postgresUrl'), schema });
    await store.migrate();
    validator = await startTestValidator();
    // The operator's own configuration, so the controllers are registered exactly as in production.
    const config = loadOperatorConfig(
      ['--identity', `observability-${uniqueSuffix()}`, '--postgres-schema', schema],
      {},
    );
    // As the chart's ServiceAccount, like every operator of the integration suite.
    manager = createTestManager(operatorClient(), namespace, {
      // The production registry: default process metrics included.
      metrics: createMetrics(),
      health: { port: 0, host: '127.0.0.1' },
      leaderElection: { namespace, name: config.leaderElectionId, identity: config.identity },
      onFatal: () => {},
    });
    registerAuroraControllers(manager, config, validator.client, store);
    await manager.start();

    const create = (obj: KubeObject) => client.create({ ...obj, metadata: { ...obj.metadata, namespace } });
    const deployment = (name: string, replicas: number, labels: Record<string, string> = {}) =>
      create(appDeployment(name, undefined, { replicas, labels }));
    await create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'er-redis' },
      stringData: { url: inject('redisUrl') },
    } as KubeObject);
    await create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'audit-db' },
      stringData: { url: inject('postgresUrl') },
    } as KubeObject);

    // TriageModel: the example model, validated (its latency is whatever this machine gives).
    const [configMap] = parseYamlObjects(readFileSync(exampleModelFiles.configMap, 'utf8'));
    await create(configMap as KubeObject);
    const [model] = parseYamlObjects(
      readFileSync(join(repoRoot, 'examples/triage-model.yaml'), 'utf8'),
    ) as TriageModel[];
    const modelSpec = structuredClone((model as TriageModel).spec);
    delete modelSpec.acceptance.maxLatencyMs;
    await create({ ...(model as TriageModel), spec: modelSpec });
    // InferencePool: one pod, on a node no Apple chip of the fleet matches, so it takes no unified memory
    // from the pools of the placement tests.
    const [pool] = parseYamlObjects(readFileSync(join(repoRoot, 'examples/inference-pool.yaml'), 'utf8'));
    await create({
      ...(pool as KubeObject),
      spec: {
        ...(pool as KubeObject & { spec: object }).spec,
        minReplicas: 1,
        maxReplicas: 1,
        placement: { appleSilicon: 'Preferred', chips: ['m4-max'] },
      },
    } as KubeObject);
    // CareQueue: scales a Deployment that runs no consumer up to its minimum, a decision.
    await deployment('obs-consumers', 0);
    await create({
      apiVersion: 'aurora.health/v1alpha1',
      kind: 'CareQueue',
      metadata: { name: 'obs-queue' },
      spec: {
        redis: { urlSecretRef: { name: 'er-redis', key: 'url' } },
        scaleTargetRef: { kind: 'Deployment', name: 'obs-consumers' },
        minReplicas: 1,
        maxReplicas: 2,
      },
    } as KubeObject);
    // HealingPolicy: a crash loop, remediated in DryRun (recorded and counted, nothing restarted).
    await deployment('obs-app', 1, { scenario: 'obs' });
    await create({
      apiVersion: 'aurora.health/v1alpha1',
      kind: 'HealingPolicy',
      metadata: { name: 'obs-healing' },
      spec: {
        selector: selectorFor('obs'),
        detectors: { crashLoop: { restarts: 3, windowSeconds: 600 } },
        escalation: ladder(['RestartPod', 10]),
        guardrails: guardrails(),
        mode: 'DryRun',
        approval: { requiredFor: [] },
        audit: { databaseSecretRef: { name: 'audit-db', key: 'url' } },
      },
    } as KubeObject);
    failing = keepFailing(client, namespace, 'app=obs-app', { kind: 'CrashLoop', restarts: 5 });
  }, 180_000);

  afterAll(async () => {
    await failing?.stop();
    await prometheus?.stop();
    await manager?.stop();
    await validator?.stop();
    if (redis) {
      const keys = await redis.keys(`aurora:${namespace}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
    await store?.pool.query(`drop schema if exists ${schema} cascade`).catch(() => {});
    await store?.close();
    await dropNamespace?.();
  }, 60_000);

  it('are all exported by the operator, with the labels their matchers use', async () => {
    // Until every kind has done enough for its series to exist: validated, placed, scaled, remediated.
    let problems: string[] = [];
    let text = '';
    await waitFor(
      'every metric named to be exported',
      async () => {
        text = await metricsText();
        problems = unexported(queries(), exposedSeries(text));
        return problems.length === 0 ? true : undefined;
      },
      { timeoutMs: 150_000, intervalMs: 1_000 },
    ).catch(() => {});
    expect(problems).toEqual([]);
    // The objects' own series are there, under their namespace and names.
    expect(text).toMatch(
      new RegExp(
        `aurora_status_condition\\{kind="TriageModel",namespace="${namespace}",name="er-news2-risk",type="Ready",status="True",reason="Validated"\\} 1`,
      ),
    );
    expect(text).toMatch(
      new RegExp(
        `aurora_healing_actions_total\\{namespace="${namespace}",policy="obs-healing",action="RestartPod",outcome="DryRun"\\} [1-9]`,
      ),
    );
    expect(text).toMatch(
      new RegExp(
        `aurora_carequeue_decisions_total\\{namespace="${namespace}",queue="obs-queue",direction="up",`,
      ),
    );
    expect(text).toMatch(
      new RegExp(
        `aurora_inferencepool_node_pods\\{namespace="${namespace}",pool="er-triage",node="[^"]+"\\} 1`,
      ),
    );
    expect(text).toMatch(/aurora_node_unified_memory_mib\{node="mac-mini-m4-pro-1",state="total"\} 65536/);
    expect(text).toMatch(/leader_election_master_status\{name="aurora-operator"\} 1/);
  }, 180_000);

  it('are evaluated by Prometheus, scraping the operator, with every rule healthy and the operator seen to lead', async () => {
    prometheus = await startPrometheus({
      targets: [`127.0.0.1:${manager.healthPort()}`],
      ruleFiles: [rulesFile],
    });
    const api = async <T>(path: string): Promise<T> => {
      const res = await fetch(`${prometheus?.url}${path}`);
      const body = (await res.json()) as { status: string; data: T };
      if (body.status !== 'success') throw new Error(`${path}: ${JSON.stringify(body)}`);
      return body.data;
    };
    type RulesData = {
      groups: Array<{
        rules: Array<{
          name: string;
          health: string;
          lastError?: string;
          state?: string;
          lastEvaluation: string;
        }>;
      }>;
    };
    const noLeader = alerts.find((a) => a.alert === 'AuroraOperatorNoLeader')?.expr ?? '';
    // The no-leader rule's sum, on the labels a real scrape gives: this replica leads, and counts once.
    const leaderSum = (noLeader.split(/\s<\s*1\b/)[0] ?? '').trim();
    expect(leaderSum).toMatch(/^sum\(/);
    const leaders = await waitFor('the leader seen through the no-leader rule', async () => {
      const data = await api<{ result: Array<{ value: [number, string] }> }>(
        `/api/v1/query?query=${encodeURIComponent(leaderSum)}`,
      );
      return data.result[0]?.value[1];
    });
    expect(leaders).toBe('1');
    let last: RulesData | undefined;
    await waitFor(
      'every rule evaluated after the first scrape, healthy',
      async () => {
        last = await api<RulesData>('/api/v1/rules');
        const all = last.groups.flatMap((g) => g.rules);
        const evaluated = all.filter((r) => !r.lastEvaluation.startsWith('0001-'));
        const quiet = all.find((r) => r.name === 'AuroraOperatorNoLeader')?.state === 'inactive';
        return all.length === alerts.length && evaluated.length === all.length && quiet ? true : undefined;
      },
      { timeoutMs: 30_000 },
    ).catch(() => {});
    const all = last?.groups.flatMap((g) => g.rules) ?? [];
    expect(all.map((r) => r.name).sort()).toEqual(alerts.map((a) => a.alert).sort());
    expect(
      all.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`),
    ).toEqual([]);
    expect(all.find((r) => r.name === 'AuroraOperatorNoLeader')?.state).toBe('inactive');
  }, 90_000);
});
