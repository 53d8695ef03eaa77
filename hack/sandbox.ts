// The local sandbox: a real control plane with a simulated fleet of Mac minis and cloud nodes, kept
// running until Ctrl-C. Usage: npm run sandbox
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { nodeLabels } from '../crds/node-labels.ts';
import { ensureControlPlaneBinaries } from '../test/harness/binaries.ts';
import { type ControlPlane, defaultToolsDir, startControlPlane } from '../test/harness/control-plane.ts';

const run = promisify(execFile);
const started = Date.now();
const kubectl = join(defaultToolsDir, 'bin', 'kubectl');

await ensureControlPlaneBinaries();
console.log(
  'Starting the Aurora sandbox: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok',
);
let controlPlane: ControlPlane | undefined;
let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping the sandbox`);
  await controlPlane?.stop();
  console.log('Sandbox stopped.');
  process.exit(0);
};
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

controlPlane = await startControlPlane({ log: (line) => console.log(line) });
// A stable path, so a second shell can use the sandbox across restarts.
const sandboxDir = join(defaultToolsDir, 'sandbox');
mkdirSync(sandboxDir, { recursive: true });
const kubeconfig = join(sandboxDir, 'kubeconfig');
copyFileSync(controlPlane.kubeconfigPath, kubeconfig);

const columns = [
  'kubernetes.io/arch',
  nodeLabels.chip,
  nodeLabels.gpuCores,
  nodeLabels.unifiedMemoryGiB,
].join(',');
const { stdout: version } = await run(kubectl, ['--kubeconfig', kubeconfig, 'version']);
const { stdout: nodes } = await run(kubectl, ['--kubeconfig', kubeconfig, 'get', 'nodes', '-L', columns]);
console.log(`
Sandbox ready in ${((Date.now() - started) / 1000).toFixed(1)}s.

kubeconfig: ${kubeconfig}
  export KUBECONFIG=${kubeconfig}
  export PATH=${join(defaultToolsDir, 'bin')}:$PATH   # kubectl built at the pinned version

$ kubectl version
${version.trimEnd()}

$ kubectl get nodes -L ${columns}
${nodes.trimEnd()}

Component logs: ${join(controlPlane.runDir, 'logs')}
Press Ctrl-C to stop.`);

// Stays up until a signal arrives; the timer keeps the event loop alive.
setInterval(() => {
  if (!controlPlane?.apiServer().isRunning() && !stopping) {
    console.error('kube-apiserver exited; see its log. Stopping.');
    void shutdown('apiserver-exit');
  }
}, 5_000);
