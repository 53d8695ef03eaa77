// The Argo CD setup in examples/argocd, checked against Argo CD's own CRDs on the real API server (each
// object applied server-side as a dry run, with strict field validation), and against what it rests on:
// server-side apply everywhere, the chart before the examples, the replicas Aurora scales left to Aurora,
// the paths and globs matching what is in the repository, the chart rendering with the Application's
// values and installing only what the project allows.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generatedDir } from '../../crds/generate.ts';
import { renderChart } from '../../hack/local-cluster/chart.ts';
import { defaultToolsDir, parseYamlObjects, repoRoot } from '../../hack/local-cluster/control-plane.ts';
import { installCrds } from '../../hack/local-cluster/crds.ts';
import { ApiError, createKubeClient, isConflict } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { testAccess } from '../harness/cluster.ts';

const client = createKubeClient(testAccess());
const argocdDir = join(repoRoot, 'examples', 'argocd');
const argocdCrdDir = join(defaultToolsDir, 'crds', 'argocd');
const argocdNamespace = 'argocd';

interface DirectorySource {
  recurse?: boolean;
  include?: string;
  exclude?: string;
}
interface Application extends KubeObject {
  spec: {
    project: string;
    source: {
      repoURL: string;
      targetRevision: string;
      path: string;
      directory?: DirectorySource;
      helm?: { releaseName?: string; valuesObject?: Record<string, unknown> };
    };
    destination: { server: string; namespace: string };
    ignoreDifferences?: Array<{
      group?: string;
      kind: string;
      jsonPointers?: string[];
      jqPathExpressions?: string[];
    }>;
    syncPolicy?: {
      automated?: { prune?: boolean; selfHeal?: boolean };
      syncOptions?: string[];
      retry?: { limit?: number; backoff?: { duration?: string; factor?: number; maxDuration?: string } };
    };
  };
}
interface AppProject extends KubeObject {
  spec: {
    sourceRepos: string[];
    destinations: Array<{ server: string; namespace: string }>;
    clusterResourceWhitelist?: Array<{ group: string; kind: string; name?: string }>;
  };
}

/** Each Argo CD object of examples/argocd with the file it is in (argocd-cm-health.yaml is a ConfigMap). */
const argoObjects = readdirSync(argocdDir)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((file) =>
    parseYamlObjects(readFileSync(join(argocdDir, file), 'utf8')).map((object) => ({ file, object })),
  )
  .filter(({ object }) => object.apiVersion === 'argoproj.io/v1alpha1');
const applications = argoObjects.filter((o) => o.object.kind === 'Application') as Array<{
  file: string;
  object: Application;
}>;
const app = (name: string): Application => {
  const found = applications.find((a) => a.object.metadata.name === name)?.object;
  if (!found) throw new Error(`examples/argocd has no Application ${name}`);
  return found;
};
const project = argoObjects.find((o) => o.object.kind === 'AppProject')?.object as AppProject | undefined;
const wave = (o: KubeObject) => Number(o.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? 0);

/**
 * A glob as Argo CD matches a directory source's include and exclude (gobwas/glob with no separator:
 * `*` crosses `/`), over the path relative to the source's path.
 */
function argoGlob(pattern: string): RegExp {
  let re = '';
  let depth = 0;
  for (const ch of pattern) {
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else if (ch === '{') {
      depth++;
      re += '(?:';
    } else if (ch === '}' && depth > 0) {
      depth--;
      re += ')';
    } else if (ch === ',' && depth > 0) re += '|';
    else if (ch === '[' || ch === ']' || ch === '\\') throw new Error(`unsupported in this test: ${pattern}`);
    else re += ch.replace(/[.+^$()|]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** The files a directory source reads, as Argo CD's repo server finds them (yaml, yml, json, jsonnet). */
function directoryFiles(path: string, directory: DirectorySource = {}): string[] {
  const root = join(repoRoot, path);
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) return directory.recurse && !name.startsWith('.') ? walk(full) : [];
      return [relative(root, full).split(sep).join('/')];
    });
  return walk(root)
    .filter((f) => /\.(yaml|yml|json|jsonnet)$/.test(f))
    .filter((f) => !directory.exclude || !argoGlob(directory.exclude).test(f))
    .filter((f) => !directory.include || argoGlob(directory.include).test(f))
    .sort();
}

/** Go's filepath.Match for names without `/`, as an AppProject matches its whitelist. */
const nameMatch = (pattern: string, name: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^$()|{}]/g, '\\$&')
      .replace(/\*/g, '[^/]*')
      .replace(/\?/g, '[^/]')}$`,
  ).test(name);

/** Server-side apply as a dry run with strict field validation: what the API server would store. */
async function dryRunApply<T extends KubeObject>(obj: T): Promise<T> {
  const info = await client.resource(obj.apiVersion, obj.kind);
  return client.request<T>('PATCH', client.path(info, obj.metadata.namespace, obj.metadata.name), {
    body: obj,
    contentType: 'application/apply-patch+yaml',
    query: { fieldManager: 'aurora-examples-test', dryRun: 'All', fieldValidation: 'Strict', force: true },
  });
}

beforeAll(async () => {
  // Argo CD's CRDs, as hack/build-control-plane.sh copies them from the Argo CD module.
  await installCrds(
    client,
    ['application-crd.yaml', 'appproject-crd.yaml'].flatMap((file) =>
      parseYamlObjects(readFileSync(join(argocdCrdDir, file), 'utf8')),
    ),
  );
  await client
    .create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: argocdNamespace } })
    .catch((err) => {
      if (!isConflict(err)) throw err;
    });
});

describe('the Argo CD objects of examples/argocd on the API server', () => {
  it('are the root, the chart, the examples and the project', () => {
    expect(applications.map((a) => a.object.metadata.name).sort()).toEqual([
      'aurora',
      'aurora-examples',
      'aurora-root',
    ]);
    expect(project?.metadata.name).toBe('aurora');
  });

  it.each(argoObjects.map((o) => [`${o.object.kind} ${o.object.metadata.name}`, o.object] as const))(
    '%s is accepted as written, with nothing dropped',
    async (_name, object) => {
      expect(object.metadata.namespace).toBe(argocdNamespace);
      const stored = await dryRunApply(object);
      expect(stored.metadata.uid).toBeDefined();
      expect(stored.spec).toMatchObject(object.spec as object);
    },
  );

  it('refuses a misspelt field and a value of the wrong type, with the field named (the check above can fail)', async () => {
    const misspelt = structuredClone(app('aurora'));
    (misspelt.spec.syncPolicy as Record<string, unknown>).automated = { prune: true, selfheal: true };
    await expect(dryRunApply(misspelt)).rejects.toThrow(/selfheal/);
    const wrongType = structuredClone(app('aurora'));
    (wrongType.spec.syncPolicy as { retry: unknown }).retry = { limit: 'ten' };
    const refusal = await dryRunApply(wrongType).catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(ApiError);
    expect((refusal as ApiError).message).toMatch(/spec\.syncPolicy\.retry\.limit/);
  });
});

describe('how the Applications sync', () => {
  it('apply server-side, every one', () => {
    for (const { object } of applications)
      expect(object.spec.syncPolicy?.syncOptions, object.metadata.name).toContain('ServerSideApply=true');
  });

  it('sync automatically, retry with backoff, and never cascade a deletion', () => {
    for (const { object } of applications) {
      const { automated, retry } = object.spec.syncPolicy ?? {};
      expect(automated?.selfHeal, object.metadata.name).toBe(true);
      expect(retry?.limit).toBeGreaterThan(0);
      expect(retry?.backoff?.factor).toBeGreaterThan(1);
      expect(retry?.backoff?.duration).toMatch(/^\d+[smh]$/);
      expect(retry?.backoff?.maxDuration).toMatch(/^\d+[smh]$/);
      expect(object.metadata.finalizers ?? []).toEqual([]);
    }
    for (const name of ['aurora', 'aurora-examples']) {
      expect(app(name).spec.syncPolicy?.automated?.prune, name).toBe(true);
      expect(app(name).spec.syncPolicy?.syncOptions).toContain('CreateNamespace=true');
      expect(app(name).spec.project).toBe(project?.metadata.name);
    }
  });

  it('the root syncs exactly the project and the two Applications, in waves: project, chart, examples', () => {
    const root = app('aurora-root');
    expect(root.spec.source.path).toBe('examples/argocd');
    expect(root.spec.destination.namespace).toBe(argocdNamespace);
    const synced = directoryFiles(root.spec.source.path, root.spec.source.directory);
    expect(synced).toEqual(
      [...new Set(argoObjects.filter((o) => o.object !== root).map((o) => o.file))].sort(),
    );
    expect(synced).not.toContain('argocd-cm-health.yaml');
    if (!project) throw new Error('no AppProject');
    expect(wave(project)).toBeLessThan(wave(app('aurora')));
    expect(wave(app('aurora'))).toBeLessThan(wave(app('aurora-examples')));
  });

  it('all come from one repository, the one the project allows', () => {
    const urls = new Set(applications.map((a) => a.object.spec.source.repoURL));
    expect(urls.size).toBe(1);
    expect(project?.spec.sourceRepos).toEqual([...urls]);
    expect(new Set(applications.map((a) => a.object.spec.source.targetRevision)).size).toBe(1);
  });
});

describe('the replicas Aurora scales', () => {
  interface Schema {
    properties?: Record<string, Schema>;
    items?: Schema;
    enum?: string[];
  }
  interface Crd {
    spec: {
      versions: Array<{
        schema: { openAPIV3Schema: Schema };
        subresources?: { scale?: { specReplicasPath: string } };
      }>;
    };
  }
  const crd = (plural: string) =>
    parse(readFileSync(join(generatedDir, `aurora.health_${plural}.yaml`), 'utf8')) as Crd;
  /** The enum at a path of a generated CRD's schema (the schema the API server serves). */
  const enumAt = (plural: string, ...path: string[]) => {
    let node: Schema | undefined = crd(plural).spec.versions[0]?.schema.openAPIV3Schema;
    for (const step of path) node = step === '[]' ? node?.items : node?.properties?.[step];
    if (!node?.enum) throw new Error(`no enum at ${plural} ${path.join('.')}`);
    return node.enum;
  };
  // What a CareQueue may scale (scaleTargetRef.kind), and what a HealingPolicy's ScaleOut may (its kinds).
  const scaledKinds = new Set<string>([
    ...enumAt('carequeues', 'spec', 'scaleTargetRef', 'kind'),
    ...enumAt('healingpolicies', 'spec', 'selector', 'kinds', '[]'),
  ]);
  // Both scale through the scale subresource, which sets the field the kind's scale maps to.
  const replicasPointer = (kind: string) => {
    if (kind !== 'InferencePool') return { group: 'apps', pointer: '/spec/replicas' };
    const path = crd('inferencepools').spec.versions[0]?.subresources?.scale?.specReplicasPath ?? '';
    return { group: 'aurora.health', pointer: path.replace(/^\./, '/').replaceAll('.', '/') };
  };

  it('are what the code says: InferencePool, Deployment and StatefulSet', () => {
    expect([...scaledKinds].sort()).toEqual(['Deployment', 'InferencePool', 'StatefulSet']);
  });

  it('are ignored by the examples Application, each at the field its scale sets, and nothing else', () => {
    const ignored = app('aurora-examples').spec.ignoreDifferences ?? [];
    const expected = [...scaledKinds].map((kind) => {
      const { group, pointer } = replicasPointer(kind);
      return { group, kind, jsonPointers: [pointer] };
    });
    expect([...ignored].sort((a, b) => a.kind.localeCompare(b.kind))).toEqual(
      expected.sort((a, b) => a.kind.localeCompare(b.kind)),
    );
    expect(app('aurora-examples').spec.syncPolicy?.syncOptions).toContain('RespectIgnoreDifferences=true');
  });

  it('include the example CareQueue target, which the examples Application deploys', () => {
    const objects = directoryFiles('examples', app('aurora-examples').spec.source.directory).flatMap((f) =>
      parseYamlObjects(readFileSync(join(repoRoot, 'examples', f), 'utf8')),
    );
    const queue = objects.find((o) => o.kind === 'CareQueue') as KubeObject & {
      spec: { scaleTargetRef: { kind: string; name: string } };
    };
    const target = objects.find(
      (o) => o.kind === queue.spec.scaleTargetRef.kind && o.metadata.name === queue.spec.scaleTargetRef.name,
    );
    expect(target, 'the CareQueue scales an object the Application deploys').toBeDefined();
    expect(app('aurora-examples').spec.ignoreDifferences?.map((d) => d.kind)).toContain(target?.kind);
  });

  it('apply to no other Application: the chart and the root own no replicas Aurora sets', () => {
    expect(app('aurora').spec.ignoreDifferences ?? []).toEqual([]);
    expect(app('aurora-root').spec.ignoreDifferences ?? []).toEqual([]);
  });
});

describe('the examples Application', () => {
  const examples = app('aurora-examples');
  const files = () => directoryFiles(examples.spec.source.path, examples.spec.source.directory);

  it('reads a path that exists', () => {
    expect(statSync(join(repoRoot, examples.spec.source.path)).isDirectory()).toBe(true);
  });

  it('takes every example manifest and the model ConfigMap, and nothing of argocd/ or kind/', () => {
    const topLevel = readdirSync(join(repoRoot, 'examples'))
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    expect(files()).toEqual([...topLevel, 'model/configmap.yaml'].sort());
    for (const f of files()) expect(f).not.toMatch(/^(argocd|kind)\//);
  });

  it('deploys the four Aurora kinds and what they name, all in its destination namespace', () => {
    const objects = files().flatMap((f) =>
      parseYamlObjects(readFileSync(join(repoRoot, 'examples', f), 'utf8')),
    );
    const kinds = new Set(
      objects.filter((o) => o.apiVersion === 'aurora.health/v1alpha1').map((o) => o.kind),
    );
    expect([...kinds].sort()).toEqual(['CareQueue', 'HealingPolicy', 'InferencePool', 'TriageModel']);
    for (const o of objects)
      expect(o.metadata.namespace ?? examples.spec.destination.namespace).toBe('emergency');
    expect(examples.spec.destination.namespace).toBe('emergency');
    const has = (kind: string, name: string) =>
      objects.some((o) => o.kind === kind && o.metadata.name === name);
    const model = objects.find((o) => o.kind === 'TriageModel') as KubeObject & {
      spec: { source: { configMap: { name: string } } };
    };
    const pool = objects.find((o) => o.kind === 'InferencePool') as KubeObject & {
      spec: { modelRef: { name: string } };
    };
    expect(has('ConfigMap', model.spec.source.configMap.name)).toBe(true);
    expect(has('TriageModel', pool.spec.modelRef.name)).toBe(true);
  });
});

describe('the chart Application', () => {
  const chartApp = app('aurora');
  const values = chartApp.spec.source.helm?.valuesObject ?? {};
  let rendered: KubeObject[];
  beforeAll(async () => {
    rendered = await renderChart({
      release: chartApp.spec.source.helm?.releaseName ?? chartApp.metadata.name,
      namespace: chartApp.spec.destination.namespace,
      values,
    });
  });

  it('installs charts/aurora as release aurora in aurora-system, with the CRDs', () => {
    expect(chartApp.spec.source.path).toBe('charts/aurora');
    const chart = parse(readFileSync(join(repoRoot, chartApp.spec.source.path, 'Chart.yaml'), 'utf8'));
    expect(chart.name).toBe('aurora');
    expect(chartApp.spec.source.helm?.releaseName).toBe('aurora');
    expect(chartApp.spec.destination.namespace).toBe('aurora-system');
    expect(values).toMatchObject({ crds: { install: true } });
  });

  it('renders with its values (values.schema.json accepts them), CRDs in a wave before everything else', () => {
    const crds = rendered.filter((o) => o.kind === 'CustomResourceDefinition');
    expect(crds.map((c) => c.metadata.name).sort()).toEqual(
      readdirSync(generatedDir)
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => f.replace(/^aurora\.health_(.*)\.yaml$/, '$1.aurora.health'))
        .sort(),
    );
    const others = rendered.filter((o) => o.kind !== 'CustomResourceDefinition');
    for (const c of crds)
      for (const o of others) expect(wave(c), `${c.metadata.name} before ${o.kind}`).toBeLessThan(wave(o));
  });

  it('keeps the CRDs when git drops them or the Application goes (Prune=false, Delete=false)', () => {
    for (const c of rendered.filter((o) => o.kind === 'CustomResourceDefinition')) {
      const options = (c.metadata.annotations?.['argocd.argoproj.io/sync-options'] ?? '')
        .split(',')
        .map((s) => s.trim());
      expect(options, c.metadata.name).toContain('Prune=false');
      expect(options, c.metadata.name).toContain('Delete=false');
    }
  });

  it('renders only what the project allows: cluster-wide objects by name, the rest in its namespaces', async () => {
    if (!project) throw new Error('no AppProject');
    const allowed = project.spec.destinations.map((d) => d.namespace);
    const whitelist = project.spec.clusterResourceWhitelist ?? [];
    const permitted = (group: string, kind: string, name: string) =>
      whitelist.some((w) => w.group === group && w.kind === kind && (!w.name || nameMatch(w.name, name)));
    for (const o of rendered) {
      const info = await client.resource(o.apiVersion, o.kind);
      const group = o.apiVersion.includes('/') ? (o.apiVersion.split('/')[0] as string) : '';
      if (info.namespaced)
        expect(allowed, `${o.kind} ${o.metadata.name}`).toContain(
          o.metadata.namespace ?? chartApp.spec.destination.namespace,
        );
      else expect(permitted(group, o.kind, o.metadata.name), `${o.kind} ${o.metadata.name}`).toBe(true);
    }
    // CreateNamespace=true creates each Application's namespace, which the project must allow too.
    for (const name of ['aurora', 'aurora-examples'])
      expect(permitted('', 'Namespace', app(name).spec.destination.namespace), name).toBe(true);
  });
});
