// The Helm chart, with the helm that hack/build-control-plane.sh builds: lint and render with default
// values and with every option on, apply to the real API server, check the rendered RBAC against what
// the controllers declare, and check that values.schema.json refuses bad values by name.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { auroraAccess } from '../../cmd/operator.ts';
import { applyRendered, chartPath, helm, helmTemplate, renderChart } from '../../hack/local-cluster/chart.ts';
import { defaultToolsDir, parseYamlObjects } from '../../hack/local-cluster/control-plane.ts';
import { waitFor } from '../../hack/local-cluster/process.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { PolicyRule } from '../../operator/rbac.ts';
import { testAccess, uniqueSuffix } from '../harness/cluster.ts';

const client = createKubeClient(testAccess());
const allOnValues = parse(readFileSync(join(chartPath, 'ci', 'all-on-values.yaml'), 'utf8')) as Record<
  string,
  unknown
>;
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const kindsOf = (objects: readonly KubeObject[]) => new Set(objects.map((o) => o.kind));
type Role = KubeObject & { rules?: PolicyRule[] };
const roles = (objects: readonly KubeObject[]) =>
  objects.filter((o): o is Role => o.kind === 'ClusterRole' || o.kind === 'Role');

/** Where a role grants: everywhere (a ClusterRoleBinding), or in the namespaces of its RoleBindings. */
function scopeOf(role: Role, objects: readonly KubeObject[]): 'cluster' | 'operatorNamespace' {
  type Binding = KubeObject & { roleRef?: { kind: string; name: string } };
  const boundClusterWide = objects.some(
    (o) =>
      o.kind === 'ClusterRoleBinding' &&
      (o as Binding).roleRef?.kind === role.kind &&
      (o as Binding).roleRef?.name === role.metadata.name,
  );
  return role.kind === 'ClusterRole' && boundClusterWide ? 'cluster' : 'operatorNamespace';
}

/**
 * What is wrong with a chart's RBAC: wildcards anywhere, Secrets listed or watched cluster-wide, and
 * any operator verb that no controller or the runtime declares in that scope (or a declared one the
 * chart lacks there).
 */
function rbacProblems(objects: readonly KubeObject[]): string[] {
  const problems: string[] = [];
  const declared = new Set(
    auroraAccess.flatMap((a) =>
      a.resources.flatMap((r) => a.verbs.map((v) => `${a.scope ?? 'cluster'} ${a.apiGroup}/${r}:${v}`)),
    ),
  );
  const granted = new Set<string>();
  for (const role of roles(objects)) {
    const component = role.metadata.labels?.['app.kubernetes.io/component'];
    const scope = scopeOf(role, objects);
    for (const rule of role.rules ?? []) {
      const all = [...rule.apiGroups, ...rule.resources, ...rule.verbs];
      if (all.some((x) => x.includes('*')))
        problems.push(`${role.metadata.name}: wildcard in ${JSON.stringify(rule)}`);
      if (
        scope === 'cluster' &&
        rule.resources.includes('secrets') &&
        rule.verbs.some((v) => v === 'list' || v === 'watch')
      )
        problems.push(`${role.metadata.name}: lists or watches Secrets cluster-wide`);
      if (component !== 'operator') continue;
      for (const g of rule.apiGroups)
        for (const r of rule.resources)
          for (const v of rule.verbs) {
            granted.add(`${scope} ${g}/${r}:${v}`);
            if (!declared.has(`${scope} ${g}/${r}:${v}`))
              problems.push(`${role.metadata.name}: ${v} ${g}/${r} is declared by no controller (${scope})`);
          }
    }
  }
  for (const d of declared) if (!granted.has(d)) problems.push(`declared but not granted: ${d}`);
  return problems;
}

describe('helm lint and helm template', () => {
  it.each([
    ['default values', []],
    ['every option on', ['-f', join(chartPath, 'ci', 'all-on-values.yaml')]],
  ])('lints clean with %s', async (_, args) => {
    const result = await helm(['lint', '--strict', chartPath, ...args]);
    expect(result.stdout + result.stderr).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(result.code).toBe(0);
  });

  it('renders the operator, its RBAC, the CRDs and the profiler by default, and the options only when asked', async () => {
    const defaults = await renderChart();
    expect([...kindsOf(defaults)].sort()).toEqual(
      [
        'ClusterRole',
        'ClusterRoleBinding',
        'CustomResourceDefinition',
        'DaemonSet',
        'Deployment',
        'PodDisruptionBudget',
        'RoleBinding',
        'Service',
        'ServiceAccount',
        'ValidatingAdmissionPolicy',
        'ValidatingAdmissionPolicyBinding',
      ].sort(),
    );
    const crds = defaults.filter((o) => o.kind === 'CustomResourceDefinition');
    expect(crds.map((c) => c.metadata.name).sort()).toEqual([
      'carequeues.aurora.health',
      'healingpolicies.aurora.health',
      'inferencepools.aurora.health',
      'triagemodels.aurora.health',
    ]);
    for (const crd of crds) expect(crd.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');

    const allOn = await renderChart({ values: allOnValues });
    for (const kind of ['ServiceMonitor', 'PrometheusRule', 'NetworkPolicy', 'ConfigMap'])
      expect(kindsOf(allOn), kind).toContain(kind);
    const dashboard = allOn.find(
      (o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard === '1',
    ) as (KubeObject & { data: Record<string, string> }) | undefined;
    expect(JSON.parse(dashboard?.data['aurora.json'] ?? '{}').uid).toBeTruthy();
    const rule = allOn.find((o) => o.kind === 'PrometheusRule') as KubeObject & {
      spec: { groups: unknown[] };
    };
    expect(rule.spec).toEqual(
      parse(readFileSync(join(chartPath, 'files', 'prometheus', 'aurora.rules.yaml'), 'utf8')),
    );
    const health = allOn.find((o) => o.metadata.name.endsWith('-argocd-health')) as KubeObject & {
      data: Record<string, string>;
    };
    expect(Object.keys(health.data).sort()).toEqual(
      ['CareQueue', 'HealingPolicy', 'InferencePool', 'TriageModel'].map(
        (k) => `resource.customizations.health.aurora.health_${k}`,
      ),
    );
    for (const script of Object.values(health.data)) expect(script).toMatch(/return hs/);

    const withoutCrds = await renderChart({ values: { crds: { install: false } } });
    expect(kindsOf(withoutCrds)).not.toContain('CustomResourceDefinition');
    const noKeep = await renderChart({ values: { crds: { keep: false } } });
    for (const crd of noKeep.filter((o) => o.kind === 'CustomResourceDefinition'))
      expect(crd.metadata.annotations?.['helm.sh/resource-policy']).toBeUndefined();
  });

  it('mounts the API token into the operator container only, never the validator', async () => {
    const deployment = (await renderChart()).find((o) => o.kind === 'Deployment') as KubeObject & {
      spec: {
        replicas: number;
        template: {
          spec: {
            automountServiceAccountToken: boolean;
            containers: Array<{
              name: string;
              volumeMounts?: Array<{ name: string }>;
              securityContext: unknown;
            }>;
          };
        };
      };
    };
    const pod = deployment.spec.template.spec;
    expect(deployment.spec.replicas).toBe(2);
    expect(pod.automountServiceAccountToken).toBe(false);
    const mounts = (name: string) =>
      pod.containers.find((c) => c.name === name)?.volumeMounts?.map((m) => m.name) ?? [];
    expect(mounts('operator')).toContain('kube-api-access');
    expect(mounts('validator')).not.toContain('kube-api-access');
    for (const c of pod.containers)
      expect(c.securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        allowPrivilegeEscalation: false,
      });
  });
});

describe('the rendered manifests on the real API server', () => {
  it('with default values: installed by the test harness, every object is there', async () => {
    const defaults = await renderChart();
    for (const obj of defaults) {
      const live = await client.get({
        ...obj,
        metadata: {
          name: obj.metadata.name,
          ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
        },
      });
      expect(live, `${obj.kind} ${obj.metadata.name}`).toBeDefined();
    }
  });

  it('with every option on (ServiceMonitor and PrometheusRule on prometheus-operator’s CRDs), in a release of its own', async () => {
    const crdDir = join(defaultToolsDir, 'crds', 'prometheus-operator');
    expect(existsSync(crdDir), `${crdDir} (hack/build-control-plane.sh step 8)`).toBe(true);
    const monitoringCrds = readdirSync(crdDir).flatMap((f) =>
      parseYamlObjects(readFileSync(join(crdDir, f), 'utf8')),
    );
    const namespace = `aurora-all-${uniqueSuffix()}`;
    const release = `all-${uniqueSuffix()}`;
    const objects = await renderChart({ release, namespace, values: allOnValues });
    cleanups.push(async () => {
      for (const o of objects.filter((x) => !x.metadata.namespace && x.kind !== 'CustomResourceDefinition'))
        await client.delete(o).catch(() => {});
      await client.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
    });
    await applyRendered(
      client,
      [...monitoringCrds, ...objects.filter((o) => o.metadata.namespace !== 'argocd')],
      namespace,
    );
    // The health-check ConfigMap goes to Argo CD's namespace.
    await applyRendered(
      client,
      objects.filter((o) => o.metadata.namespace === 'argocd'),
      'argocd',
    );
    for (const obj of objects) {
      await waitFor(`${obj.kind} ${obj.metadata.name}`, async () =>
        (await client.get({
          ...obj,
          metadata: {
            name: obj.metadata.name,
            ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
          },
        }))
          ? true
          : undefined,
      );
    }
  });
});

describe('least privilege', () => {
  it('the rendered RBAC has no wildcard, never lists or watches Secrets cluster-wide, and grants the operator exactly what its code declares', async () => {
    expect(rbacProblems(await renderChart())).toEqual([]);
    expect(rbacProblems(await renderChart({ values: allOnValues }))).toEqual([]);
  });

  it('the check finds each of those faults', async () => {
    const rendered = await renderChart();
    const operatorRole = roles(rendered).find((r) => r.metadata.name === 'aurora-operator') as Role;
    const doctored = (rule: PolicyRule) => [
      { ...operatorRole, rules: [...(operatorRole.rules ?? []), rule] },
      ...rendered.filter((o) => o !== operatorRole),
    ];
    expect(rbacProblems(doctored({ apiGroups: ['apps'], resources: ['*'], verbs: ['get'] }))).toContainEqual(
      expect.stringMatching(/wildcard/),
    );
    expect(
      rbacProblems(doctored({ apiGroups: [''], resources: ['secrets'], verbs: ['list'] })),
    ).toContainEqual(expect.stringMatching(/Secrets cluster-wide/));
    expect(
      rbacProblems(doctored({ apiGroups: [''], resources: ['pods'], verbs: ['create'] })),
    ).toContainEqual('aurora-operator: create /pods is declared by no controller (cluster)');
    // Leases are the operator's in its own namespace only, never everywhere.
    expect(
      rbacProblems(doctored({ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get'] })),
    ).toContainEqual(
      'aurora-operator: get coordination.k8s.io/leases is declared by no controller (cluster)',
    );
  });

  it('the API server agrees: the operator’s account can read a Secret by name but not list them, and cannot touch RBAC or CRDs', async () => {
    const { releaseNamespace, operatorServiceAccount } = inject('chart');
    const user = `system:serviceaccount:${releaseNamespace}:${operatorServiceAccount}`;
    const can = async (attributes: Record<string, string>) => {
      const review = await client.create<KubeObject & { status?: { allowed?: boolean } }>({
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        metadata: { name: '' },
        spec: {
          user,
          groups: ['system:serviceaccounts', `system:serviceaccounts:${releaseNamespace}`],
          resourceAttributes: attributes,
        },
      } as KubeObject);
      return review.status?.allowed === true;
    };
    expect(await can({ verb: 'get', resource: 'secrets', namespace: 'er', name: 'redis' })).toBe(true);
    expect(await can({ verb: 'list', resource: 'secrets' })).toBe(false);
    expect(await can({ verb: 'watch', resource: 'secrets', namespace: 'er' })).toBe(false);
    expect(
      await can({ verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'clusterrolebindings' }),
    ).toBe(false);
    expect(
      await can({ verb: 'delete', group: 'apiextensions.k8s.io', resource: 'customresourcedefinitions' }),
    ).toBe(false);
    expect(
      await can({
        verb: 'create',
        group: 'coordination.k8s.io',
        resource: 'leases',
        namespace: releaseNamespace,
      }),
    ).toBe(true);
    expect(
      await can({
        verb: 'create',
        group: 'coordination.k8s.io',
        resource: 'leases',
        namespace: 'kube-system',
      }),
    ).toBe(false);
    expect(await can({ verb: 'delete', resource: 'services', namespace: 'er' })).toBe(false);
    expect(await can({ verb: 'create', resource: 'pods', namespace: 'er' })).toBe(false);
    expect(await can({ verb: 'create', resource: 'pods', subresource: 'eviction', namespace: 'er' })).toBe(
      true,
    );
  });
});

describe('values.schema.json', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['a replica count as text', { operator: { replicas: 'two' } }, '/operator/replicas'],
    ['too many replicas', { operator: { replicas: 9 } }, '/operator/replicas'],
    ['an unknown log level', { operator: { logLevel: 'verbose' } }, '/operator/logLevel'],
    ['an unknown pull policy', { image: { pullPolicy: 'Sometimes' } }, '/image/pullPolicy'],
    ['a digest that is no sha256', { image: { digest: 'latest' } }, '/image/digest'],
    ['a port out of range', { metrics: { service: { port: 70000 } } }, '/metrics/service/port'],
    ['a misspelt option', { metrics: { serviceMonitr: { enabled: true } } }, '/metrics'],
    [
      'a schema name PostgreSQL would refuse',
      { operator: { postgres: { schema: 'Aurora-Prod' } } },
      '/operator/postgres/schema',
    ],
    ['a boolean given as a word', { crds: { install: 'enabled' } }, '/crds/install'],
    [
      'a scrape interval without a unit',
      { metrics: { serviceMonitor: { interval: '30' } } },
      '/metrics/serviceMonitor/interval',
    ],
    ['a memory bound below what a model needs', { validator: { memoryMiB: 16 } }, '/validator/memoryMiB'],
    [
      'a profiling interval of seconds',
      { nodeProfiler: { intervalSeconds: 5 } },
      '/nodeProfiler/intervalSeconds',
    ],
    [
      'a lease name with capitals',
      { operator: { leaderElection: { id: 'Aurora' } } },
      '/operator/leaderElection/id',
    ],
    [
      'a lease duration of a fraction of a second',
      { operator: { leaderElection: { leaseDurationSeconds: 0.5 } } },
      '/operator/leaderElection/leaseDurationSeconds',
    ],
    [
      'a resource quantity that is no quantity',
      { operator: { resources: { limits: { memory: 'lots' } } } },
      '/operator/resources/limits/memory',
    ],
    ['a top-level value the chart does not have', { replicas: 3 }, "additional properties 'replicas'"],
  ])('refuses %s, naming the field', async (_, values, field) => {
    const result = await helmTemplate({ values });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(result.stderr).toContain(field);
  });

  it('accepts quantities as people write them: a number of CPUs, millicores, binary and decimal suffixes', async () => {
    const result = await helmTemplate({
      values: {
        operator: {
          resources: { requests: { cpu: 0.5, memory: '256Mi' }, limits: { cpu: '1500m', memory: '1G' } },
        },
        validator: { workDirSizeLimit: '8Gi' },
      },
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    [
      'the operator and the validator on one port',
      { operator: { httpPort: 8081 } },
      /operator.httpPort and validator.port are both 8081/,
    ],
    [
      'a disruption budget no drain could meet',
      { operator: { podDisruptionBudget: { minAvailable: 2 } } },
      /minAvailable \(2\) must be below operator.replicas \(2\)/,
    ],
    [
      'a lease too little longer than the renew deadline',
      { operator: { leaderElection: { leaseDurationSeconds: 11 } } },
      /leaseDurationSeconds \(11\) must exceed renewDeadlineSeconds \(8\) by more than retryPeriodSeconds \(2\)/,
    ],
    [
      'a renew deadline that leaves one renewal attempt',
      { operator: { leaderElection: { renewDeadlineSeconds: 5, retryPeriodSeconds: 5 } } },
      /renewDeadlineSeconds \(5\) must be longer than 1.2 retryPeriodSeconds \(5\)/,
    ],
  ])('refuses %s, saying why', async (_, values, message) => {
    const result = await helmTemplate({ values });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });

  it('refuses two replicas without leader election, which would both reconcile the same objects', async () => {
    const result = await helmTemplate({ values: { operator: { leaderElection: { enabled: false } } } });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/operator.leaderElection.enabled=false with more than one replica/);
    expect(
      (await helmTemplate({ values: { operator: { replicas: 1, leaderElection: { enabled: false } } } }))
        .code,
    ).toBe(0);
  });
});
