// The Helm chart on the local control plane: rendered by the helm that hack/build-control-plane.sh
// builds, applied server-side, and the operator's ServiceAccount turned into a kubeconfig, so the
// sandbox and the integration tests run the operator with exactly the permissions the chart grants.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import type { KubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { defaultToolsDir, parseYamlObjects, repoRoot } from './control-plane.ts';
import { installCrds } from './crds.ts';

export const chartPath = join(repoRoot, 'charts', 'aurora');
export const helmBinary = join(defaultToolsDir, 'bin', 'helm');

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs helm with its own config and cache under a temporary home, so a user's repositories never matter. */
export function helm(args: readonly string[], options: { input?: string } = {}): Promise<HelmResult> {
  const home = mkdtempSync(join(tmpdir(), 'aurora-helm-'));
  return new Promise((resolve, reject) => {
    const child = execFile(
      helmBinary,
      [...args],
      {
        maxBuffer: 64 * 1024 * 1024,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: home,
          HELM_CONFIG_HOME: join(home, 'config'),
          HELM_CACHE_HOME: join(home, 'cache'),
          HELM_DATA_HOME: join(home, 'data'),
        },
      },
      (err, stdout, stderr) => {
        rmSync(home, { recursive: true, force: true });
        if (err && typeof err.code !== 'number') reject(err);
        else resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

export interface RenderOptions {
  release?: string;
  namespace?: string;
  /** Values, written to a file helm reads with -f. */
  values?: Record<string, unknown>;
}

/** `helm template` of the chart: the objects it renders, or an error with helm's message. */
export async function renderChart(options: RenderOptions = {}): Promise<KubeObject[]> {
  const result = await helmTemplate(options);
  if (result.code !== 0) throw new Error(`helm template failed: ${result.stderr.trim()}`);
  return parseYamlObjects(result.stdout);
}

/** `helm template` with the values given, as helm answered. */
export async function helmTemplate(
  options: RenderOptions = {},
  extraArgs: string[] = [],
): Promise<HelmResult> {
  const dir = mkdtempSync(join(tmpdir(), 'aurora-values-'));
  const valuesFile = join(dir, 'values.yaml');
  writeFileSync(valuesFile, stringify(options.values ?? {}));
  try {
    return await helm([
      'template',
      options.release ?? 'aurora',
      chartPath,
      '--namespace',
      options.namespace ?? 'aurora-system',
      '-f',
      valuesFile,
      ...extraArgs,
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const fieldManager = 'aurora-chart-install';
const isCrd = (o: KubeObject) => o.kind === 'CustomResourceDefinition';

/**
 * Applies what the chart rendered, server-side, as `helm install` would create it: CRDs first (waiting
 * until each kind is served), the release namespace if missing, then everything else.
 */
export async function applyRendered(
  client: KubeClient,
  objects: readonly KubeObject[],
  namespace: string,
): Promise<void> {
  await installCrds(client, objects.filter(isCrd), fieldManager);
  await applyOne(client, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  for (const obj of objects.filter((o) => !isCrd(o))) await applyOne(client, obj);
}

async function applyOne(client: KubeClient, obj: KubeObject): Promise<void> {
  try {
    await client.apply(obj, { fieldManager, force: true });
  } catch (err) {
    throw new Error(
      `${obj.kind} ${obj.metadata.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata.name} was refused: ${(err as Error).message}`,
    );
  }
}

/**
 * A token for a ServiceAccount from the TokenRequest API, as a pod would be given one. Bound to a pod,
 * the token names the pod's node, which the node profiler's admission policy reads.
 */
export async function serviceAccountToken(
  client: KubeClient,
  namespace: string,
  serviceAccount: string,
  options: { expirationSeconds?: number; boundPod?: { name: string; uid: string } } = {},
): Promise<string> {
  const info = await client.resource('v1', 'ServiceAccount');
  const response = await client.request<{ status?: { token?: string } }>(
    'POST',
    client.path(info, namespace, serviceAccount, 'token'),
    {
      body: {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          expirationSeconds: options.expirationSeconds ?? 86_400,
          ...(options.boundPod
            ? { boundObjectRef: { apiVersion: 'v1', kind: 'Pod', ...options.boundPod } }
            : {}),
        },
      },
    },
  );
  const token = response.status?.token;
  if (!token) throw new Error(`no token was issued for ServiceAccount ${namespace}/${serviceAccount}`);
  return token;
}

/** A copy of a kubeconfig that authenticates with the token given instead of the admin's. */
export function kubeconfigWithToken(
  kubeconfigPath: string,
  token: string,
  user: string,
  outPath: string,
): string {
  const config = parse(readFileSync(kubeconfigPath, 'utf8')) as {
    users: Array<{ name: string; user: Record<string, unknown> }>;
    contexts: Array<{ name: string; context: { cluster: string; user: string } }>;
  };
  config.users = [{ name: user, user: { token } }];
  for (const c of config.contexts) c.context.user = user;
  writeFileSync(outPath, stringify(config), { mode: 0o600 });
  return outPath;
}

/** The operator's ServiceAccount and its namespace-scoped role, as the chart names them for a release. */
export interface ChartIdentity {
  operatorServiceAccount: string;
  namespacedRole: string;
  profilerServiceAccount?: string;
}

export function chartIdentity(objects: readonly KubeObject[]): ChartIdentity {
  const accounts = objects.filter((o) => o.kind === 'ServiceAccount');
  const component = (o: KubeObject) => o.metadata.labels?.['app.kubernetes.io/component'];
  const operator = accounts.find((o) => component(o) === 'operator');
  const role = objects.find(
    (o) => o.kind === 'ClusterRole' && o.metadata.name.endsWith('-operator-namespaced'),
  );
  if (!operator || !role) throw new Error('the chart rendered no operator ServiceAccount or namespaced role');
  const profiler = accounts.find((o) => component(o) === 'node-profiler');
  return {
    operatorServiceAccount: operator.metadata.name,
    namespacedRole: role.metadata.name,
    ...(profiler ? { profilerServiceAccount: profiler.metadata.name } : {}),
  };
}

/**
 * Lets the operator lead from another namespace too (tests lead from their own): the chart's
 * namespace-scoped rules bound there, as the chart binds them in the release namespace.
 */
export async function bindOperatorNamespace(
  client: KubeClient,
  namespace: string,
  identity: { operatorServiceAccount: string; namespacedRole: string },
  releaseNamespace: string,
): Promise<void> {
  await applyOne(client, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: identity.namespacedRole, namespace },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: identity.namespacedRole },
    subjects: [
      { kind: 'ServiceAccount', name: identity.operatorServiceAccount, namespace: releaseNamespace },
    ],
  } as KubeObject);
}

/**
 * Installs the chart as `helm install` would, and writes the operator's kubeconfig: the admin's cluster
 * with a token of the chart's ServiceAccount, so an operator run with it has exactly the chart's RBAC.
 */
export async function installChartForOperator(
  admin: KubeClient,
  options: {
    release: string;
    namespace: string;
    values?: Record<string, unknown>;
    adminKubeconfigPath: string;
    operatorKubeconfigPath: string;
    tokenExpirationSeconds?: number;
  },
): Promise<{ rendered: KubeObject[]; identity: ChartIdentity }> {
  const { namespace } = options;
  const rendered = await renderChart(options);
  await applyRendered(admin, rendered, namespace);
  const identity = chartIdentity(rendered);
  const token = await serviceAccountToken(admin, namespace, identity.operatorServiceAccount, {
    ...(options.tokenExpirationSeconds ? { expirationSeconds: options.tokenExpirationSeconds } : {}),
  });
  kubeconfigWithToken(
    options.adminKubeconfigPath,
    token,
    `system:serviceaccount:${namespace}:${identity.operatorServiceAccount}`,
    options.operatorKubeconfigPath,
  );
  return { rendered, identity };
}
