// The local sandbox: a real control plane with a simulated fleet of Mac minis and cloud nodes, kept
// running until Ctrl-C. Usage: npm run sandbox
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { nodeLabels, unifiedMemoryResource } from '../crds/labels.ts';
import { createKubeClient } from '../operator/kube/client.ts';
import { startArrivalGenerator } from './local-cluster/arrivals.ts';
import { ensureControlPlaneBinaries } from './local-cluster/binaries.ts';
import { installChartForOperator } from './local-cluster/chart.ts';
import { startClassifyProxy } from './local-cluster/classify-proxy.ts';
import {
  type ControlPlane,
  defaultToolsDir,
  freePort,
  repoRoot,
  startControlPlane,
} from './local-cluster/control-plane.ts';
import { showHealing } from './local-cluster/healing-demo.ts';
import { operatorReady, startLocalOperator } from './local-cluster/operator.ts';
import { followPodWorkloads, type PodWorkloads } from './local-cluster/pod-workloads.ts';
import { type ManagedProcess, waitFor } from './local-cluster/process.ts';
import { ensureServices } from './local-cluster/services.ts';

const run = promisify(execFile);
const started = Date.now();
const kubectl = join(defaultToolsDir, 'bin', 'kubectl');

await ensureControlPlaneBinaries();
console.log(
  'Starting the Aurora sandbox: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok',
);
let controlPlane: ControlPlane | undefined;
let operator: ManagedProcess | undefined;
let triageServers: PodWorkloads | undefined;
let arrivals: { stop(): Promise<void> } | undefined;
let proxy: { close(): Promise<void> } | undefined;
let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping the sandbox`);
  await arrivals?.stop();
  await proxy?.close();
  await triageServers?.stop();
  await operator?.stop(10_000);
  await controlPlane?.stop();
  console.log('Sandbox stopped.');
  process.exit(0);
};
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

// PostgreSQL keeps the queue's decisions and arrivals; Redis holds the queue (the machine's own servers).
const services = await ensureServices(undefined, (line) => console.log(line));
controlPlane = await startControlPlane({ auditLog: false, log: (line) => console.log(line) });
// A stable path, so a second shell can use the sandbox across restarts.
const sandboxDir = join(defaultToolsDir, 'sandbox');
mkdirSync(sandboxDir, { recursive: true });
const kubeconfig = join(sandboxDir, 'kubeconfig');
copyFileSync(controlPlane.kubeconfigPath, kubeconfig);

// Aurora from its Helm chart, rendered by helm and applied as `helm install` would: CRDs, RBAC, the node
// profiler and its admission policy, the metrics Service. The chart's Deployment is scaled to none: the
// simulated nodes run no containers, so the operator runs here as a local process, with the token of
// the chart's ServiceAccount and so exactly the chart's permissions.
const admin = createKubeClient(controlPlane.access());
const operatorKubeconfig = join(sandboxDir, 'operator.kubeconfig');
const {
  rendered,
  identity: { operatorServiceAccount },
} = await installChartForOperator(admin, {
  release: 'aurora',
  namespace: 'aurora-system',
  values: { operator: { replicas: 0 } },
  adminKubeconfigPath: kubeconfig,
  operatorKubeconfigPath: operatorKubeconfig,
  // A month, so a sandbox left running does not lose its operator to an expired token.
  tokenExpirationSeconds: 30 * 86_400,
});
console.log(
  `  Aurora installed from charts/aurora (${rendered.length} objects; ${((Date.now() - started) / 1000).toFixed(1)}s)`,
);

// The operator runs as a local process against the sandbox, with leader election as in a cluster.
const operatorPort = await freePort();
operator = startLocalOperator({
  name: 'aurora-operator',
  kubeconfig: operatorKubeconfig,
  httpPort: operatorPort,
  flags: [
    '--leader-election-namespace=aurora-system',
    '--identity=sandbox-operator',
    `--postgres-url=${services.postgresUrl}`,
    '--postgres-schema=aurora_sandbox',
  ],
  logDir: join(controlPlane.runDir, 'logs'),
  pidDir: join(controlPlane.runDir, 'pids'),
});
await operatorReady(operator, operatorPort);
const leaseHolder = await waitFor('the operator to hold its lease', async () => {
  const { stdout } = await run(kubectl, [
    ...['--kubeconfig', kubeconfig, '-n', 'aurora-system', 'get', 'lease', 'aurora-operator'],
    ...['-o', 'jsonpath={.spec.holderIdentity}'],
  ]).catch(() => ({ stdout: '' }));
  return stdout || undefined;
});
console.log(
  `  Aurora operator ready, leader: ${leaseHolder} (${((Date.now() - started) / 1000).toFixed(1)}s)`,
);

// The examples, as a user would apply them: the emergency department's model, pool, queue and policy.
await run(kubectl, ['--kubeconfig', kubeconfig, 'create', 'namespace', 'emergency']);
// The queue's Redis URL lives in a Secret, as on a real cluster (where it would hold a password too).
await run(kubectl, [
  ...['--kubeconfig', kubeconfig, '-n', 'emergency', 'create', 'secret', 'generic', 'er-redis'],
  `--from-literal=url=${services.redisUrl}`,
]);
// The healing policy's audit trail goes to the machine's PostgreSQL, in the schema the operator uses.
await run(kubectl, [
  ...['--kubeconfig', kubeconfig, '-n', 'emergency', 'create', 'secret', 'generic', 'aurora-audit-db'],
  `--from-literal=url=${services.postgresUrl}`,
]);
const exampleFiles = [
  join(repoRoot, 'examples', 'model', 'configmap.yaml'),
  ...readdirSync(join(repoRoot, 'examples'))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => join(repoRoot, 'examples', f)),
];
for (const file of exampleFiles) await run(kubectl, ['--kubeconfig', kubeconfig, 'apply', '-f', file]);
console.log(`  examples applied in namespace emergency (${((Date.now() - started) / 1000).toFixed(1)}s)`);
/** The Ready reason of an example object once it is the one wanted (any reason when want is omitted). */
const readyReason = (kind: string, name: string, want?: string) =>
  waitFor(
    `${kind} ${name} to report ${want ?? 'Ready'}`,
    async () => {
      const { stdout } = await run(kubectl, [
        ...['--kubeconfig', kubeconfig, '-n', 'emergency', 'get', kind, name],
        ...['-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].reason}'],
      ]);
      return stdout && (!want || stdout === want) ? stdout : undefined;
    },
    { timeoutMs: 60_000 },
  );
const modelReady = await readyReason('triagemodel', 'er-news2-risk').catch(() => 'not yet reported');
console.log(`  TriageModel er-news2-risk: ${modelReady} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
const poolReady = await readyReason('inferencepool', 'er-triage', 'Serving').catch(() => 'not serving yet');
console.log(`  InferencePool er-triage: ${poolReady} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
// Simulated nodes run no containers: each ready pod of the pool gets its triage server as a local process
// with the pod's own settings (model, queue, consumer name). Each serves at most 2 entries a second here,
// standing in for the slower clinical step a real consumer feeds, so a small generator moves the replicas.
const kube = createKubeClient(controlPlane.access());
triageServers = followPodWorkloads({
  client: kube,
  namespace: 'emergency',
  labelSelector: 'aurora.health/pool=er-triage',
  workDir: join(controlPlane.runDir, 'triage-servers'),
  env: { AURORA_QUEUE_MAX_ENTRIES_PER_SECOND: '2', AURORA_DRAIN_DELAY_SECONDS: '0' },
  log: (line) => console.log(line),
});
await waitFor(
  'the triage servers to run',
  async () => ((triageServers?.running().size ?? 0) > 0 ? true : undefined),
  {
    timeoutMs: 120_000,
  },
).catch(() => console.log('  the triage servers have not started yet; see the logs'));
const classify = await startClassifyProxy(() =>
  [...(triageServers?.running().values() ?? [])].map((p) => p.url),
);
proxy = classify;
arrivals = startArrivalGenerator({
  redisUrl: services.redisUrl,
  namespace: 'emergency',
  queue: 'er-queue',
  log: (line) => console.log(line),
  status: async () => {
    const { stdout } = await run(kubectl, [
      ...['--kubeconfig', kubeconfig, '-n', 'emergency', 'get', 'carequeue', 'er-queue'],
      ...['-o', 'jsonpath={.status.waitingEntries} {.status.desiredReplicas} {.status.currentReplicas}'],
    ]).catch(() => ({ stdout: '' }));
    const [waiting, desired, current] = stdout.split(' ');
    return `queue er-queue: ${waiting || 0} waiting; pool er-triage: ${current || '?'} replicas (Aurora wants ${desired || '?'}), ${triageServers?.running().size ?? 0} triage servers running`;
  },
});
const healing = await showHealing(kubeconfig, kube, services.postgresUrl).catch((err: Error) => {
  console.log(`  the healing demonstration did not finish: ${err.message}`);
  return '';
});
const { stdout: pods } = await run(kubectl, [
  ...['--kubeconfig', kubeconfig, '-n', 'emergency', 'get', 'pods', '-l', 'aurora.health/pool=er-triage'],
  ...[
    '-o',
    'custom-columns=POD:.metadata.name,NODE:.spec.nodeName,READY:.status.conditions[?(@.type=="Ready")].status,MODEL:.metadata.annotations.aurora\\.health/model-version,UNIFIED-MIB:.spec.containers[0].resources.requests.aurora\\.health/unified-memory-mib',
  ],
]);
const { stdout: aurora } = await run(kubectl, [
  '--kubeconfig',
  kubeconfig,
  '-n',
  'emergency',
  'get',
  'aurora',
]);

const { stdout: version } = await run(kubectl, ['--kubeconfig', kubeconfig, 'version']);
const nodeColumns = [
  'NAME:.metadata.name',
  'ARCH:.metadata.labels.kubernetes\\.io/arch',
  `CHIP:.metadata.labels.${nodeLabels.chip.replace('.', '\\.')}`,
  `GPU-CORES:.metadata.labels.${nodeLabels.gpuCores.replace('.', '\\.')}`,
  `MEMORY-GIB:.metadata.labels.${nodeLabels.unifiedMemoryGiB.replace('.', '\\.')}`,
  `ALLOCATABLE-UNIFIED-MIB:.status.allocatable.${unifiedMemoryResource.replace('.', '\\.')}`,
].join(',');
const { stdout: nodes } = await run(kubectl, [
  ...['--kubeconfig', kubeconfig, 'get', 'nodes', '-o', `custom-columns=${nodeColumns}`],
]);
console.log(`
Sandbox ready in ${((Date.now() - started) / 1000).toFixed(1)}s.

kubeconfig: ${kubeconfig}
  export KUBECONFIG=${kubeconfig}
  export PATH=${join(defaultToolsDir, 'bin')}:$PATH   # kubectl built at the pinned version

$ kubectl version
${version.trimEnd()}

$ kubectl get nodes -o custom-columns=NAME,ARCH,CHIP,GPU-CORES,MEMORY-GIB,ALLOCATABLE-UNIFIED-MIB
${nodes.trimEnd()}

$ kubectl -n emergency get aurora
${aurora.trimEnd()}

$ kubectl -n emergency get pods -l aurora.health/pool=er-triage   (where the triage servers landed)
${pods.trimEnd()}

Classify a patient through the pool (round robin over its triage servers):
  curl -s http://127.0.0.1:${classify.port}/v1/classify -H 'content-type: application/json' \\
    -d '{"features": {"respiration_rate": 24, "spo2": 93, "supplemental_oxygen": 1, "systolic_bp": 98, "pulse": 118, "consciousness": 0, "temperature": 38.6}}'

The arrival generator adds synthetic patients to er-queue's streams in waves (aurora:emergency:er-queue:*),
and prints the queue and the pool every 30 s. Watch it scale:
  kubectl -n emergency get carequeue er-queue -w
  kubectl -n emergency get events --field-selector involvedObject.name=er-queue

${healing}
Aurora operator: a local process (the simulated nodes run no containers), as the chart's ServiceAccount
aurora-system/${operatorServiceAccount} with the chart's RBAC (${join(sandboxDir, 'operator.kubeconfig')}).
${leaseHolder} holds the lease aurora-system/aurora-operator; probes and metrics on http://127.0.0.1:${operatorPort}/readyz and /metrics
Logs (control plane and operator): ${join(controlPlane.runDir, 'logs')}
Press Ctrl-C to stop.`);

// Stays up until a signal arrives; the timer keeps the event loop alive.
setInterval(() => {
  if (stopping) return;
  if (!controlPlane?.apiServer().isRunning()) {
    console.error('kube-apiserver exited; see its log. Stopping.');
    void shutdown('apiserver-exit');
  } else if (!operator?.isRunning()) {
    console.error(`the operator exited; see ${operator?.logPath}. Stopping.`);
    void shutdown('operator-exit');
  }
}, 5_000);
